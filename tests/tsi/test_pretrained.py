"""ImageNet ResNet files (torchvision / timm layout) into TSN / TSM / TSI and the ablations."""

import pytest
import torch

from tests.tsi.tv_resnet import ResNet as TVResNet
from tsi import train as tsi_train
from tsi.model import create_model
from tsi.pretrained import PretrainedError, load_pretrained, read_state_dict, resnet_depth

SMALL = dict(frames=2, num_classes=5, input_size=64)


@pytest.fixture(scope="module")
def tv18():
    return TVResNet(18).eval()


@pytest.fixture(scope="module")
def r18_file(tv18, tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "resnet18-f37072fd.pth"
    torch.save(tv18.state_dict(), path)
    return path


def test_tsn_r50_gives_the_torchvision_resnet50_features(tmp_path):
    tv = TVResNet(50).eval()
    path = tmp_path / "resnet50.pth"
    torch.save(tv.state_dict(), path)
    model = create_model("tsn_r50", pretrained=path, **SMALL).eval()
    clip = torch.randn(2, 2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours = model.forward_features(clip)
        ref = tv.features(clip.flatten(0, 1))
    assert ours.shape == ref.shape == (4, 2048, 2, 2)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5 * ref.abs().max().item())
    # and a model built without the file does not (the comparison can fail)
    fresh = create_model("tsn_r50", **SMALL).eval()
    with torch.no_grad():
        assert (fresh.forward_features(clip) - ref).abs().max() > 0.1 * ref.abs().max()


@pytest.mark.parametrize("arch", ["tsi_r18", "tsm_r18", "tim_me_r18", "sme_tim_r18", "cti_r18"])
def test_every_family_loads_the_backbone_and_keeps_its_modules(arch, tv18, r18_file):
    torch.manual_seed(0)
    fresh = create_model(arch, **SMALL).state_dict()
    torch.manual_seed(0)
    model = create_model(arch, **SMALL)
    report = load_pretrained(model, r18_file)
    sd = model.state_dict()
    tv = tv18.state_dict()
    assert report.depth == 18
    assert len(report.loaded) == len(tv) - 2  # every tensor but the ImageNet fc
    assert report.unexpected == ["fc.bias", "fc.weight"]
    assert torch.equal(sd["backbone.stem.0.weight"], tv["conv1.weight"])
    assert torch.equal(sd["backbone.stages.2.1.tail.1.running_var"], tv["layer3.1.bn2.running_var"])
    assert torch.equal(sd["backbone.stages.1.0.shortcut.0.weight"], tv["layer2.0.downsample.0.weight"])
    # inserted modules and the head keep their own initialisation, and are reported missing
    inserted = [k for k in sd if ".unit." in k or k.startswith("fc.")]
    assert set(report.missing) == set(inserted)
    for k in inserted:
        assert torch.equal(sd[k], fresh[k]), k
    assert f"{len(report.loaded)} tensors loaded" in report.summary()
    assert ("unit." in report.summary()) == (arch != "tsm_r18")  # TSM's shift has no weights


def test_safetensors_and_timm_style_wrappers_load_the_same(tv18, r18_file, tmp_path):
    st = pytest.importorskip("safetensors.torch")
    sd = tv18.state_dict()
    st.save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp_path / "model.safetensors"))
    torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}, "epoch": 90},
               tmp_path / "wrapped.pt")
    ref = read_state_dict(r18_file)
    for name in ("model.safetensors", "wrapped.pt"):
        got = read_state_dict(tmp_path / name)
        assert got.keys() == ref.keys()
        assert all(torch.equal(got[k], ref[k]) for k in ref)


def test_clear_errors(r18_file, tmp_path):
    with pytest.raises(PretrainedError, match="ResNet-18 weights but the model is a ResNet-50"):
        create_model("tsi_r50", pretrained=r18_file, **SMALL)
    with pytest.raises(PretrainedError, match="base width is 32"):
        create_model("tsn_r18", pretrained=r18_file, base_width=32, **SMALL)
    torch.save({"encoder.weight": torch.zeros(3, 3)}, tmp_path / "vit.pth")
    with pytest.raises(PretrainedError, match="not a torchvision/timm ResNet"):
        create_model("tsn_r18", pretrained=tmp_path / "vit.pth", **SMALL)
    (tmp_path / "junk.pth").write_bytes(b"not a pickle")
    with pytest.raises(PretrainedError, match="junk.pth: not a weights file"):
        read_state_dict(tmp_path / "junk.pth")
    with pytest.raises(PretrainedError, match="no such weights file"):
        read_state_dict(tmp_path / "absent.pth")
    # a ResNet-152 (3, 8, 36, 3) is recognised as a ResNet but not a supported depth
    sd = {"conv1.weight": torch.zeros(64, 3, 7, 7), "layer1.0.conv3.weight": torch.zeros(1)}
    for i, n in enumerate((3, 8, 36, 3), 1):
        sd.update({f"layer{i}.{b}.conv1.weight": torch.zeros(1) for b in range(n)})
    with pytest.raises(PretrainedError, match=r"\(3, 8, 36, 3\) blocks"):
        resnet_depth(sd, "r152.pth")


def test_train_cli_pretrained(r18_file, tmp_path, caplog):
    from tsi.data.synthetic import generate

    data = tmp_path / "data"
    generate(data, train=1, val=1, seed=0, frames=4, size=(64, 48), progress=False)
    common = ["--data", str(data), "--arch", "tsn_r18", "--frames", "2", "--input-size", "32",
              "--batch-size", "4", "--epochs", "1", "--workers", "0", "--max-steps", "1", "--device", "cpu"]
    with caplog.at_level("INFO"):
        tsi_train.main(common + ["--out", str(tmp_path / "a"), "--pretrained", str(r18_file)])
    assert "ImageNet ResNet-18 weights" in caplog.text and "120 tensors loaded" in caplog.text
    code = tsi_train.main(common + ["--out", str(tmp_path / "b"), "--arch", "tsn_r50", "--pretrained", str(r18_file)])
    assert code == 2 and not (tmp_path / "b" / "last.pt").exists()
