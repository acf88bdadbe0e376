"""Polygraphy's data loader (export.polygraphy_check.load_data) refuses a bad environment in one line,
exit 2, not with a traceback inside Polygraphy."""

import pytest

from export.polygraphy_check import ENV_CALIB_DIR, ENV_CARD, ENV_MAX_CLIPS, load_data


@pytest.mark.parametrize("env, message", [
    ({}, f"{ENV_CALIB_DIR} and {ENV_CARD} not set"),
    ({ENV_CALIB_DIR: "{tmp}/none", ENV_CARD: "{tmp}/card.json"}, "model card not found"),
    ({ENV_CALIB_DIR: "{tmp}", ENV_CARD: "{tmp}/notes.json"}, "not valid JSON"),
    ({ENV_CALIB_DIR: "{tmp}", ENV_CARD: "{tmp}/notes.json", ENV_MAX_CLIPS: "many"}, "is not a whole number"),
])
def test_bad_environment_is_one_line_exit_2(tmp_path, monkeypatch, capsys, env, message):
    (tmp_path / "notes.json").write_text("not a card\n")
    for name in (ENV_CALIB_DIR, ENV_CARD, ENV_MAX_CLIPS):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value.format(tmp=tmp_path))
    with pytest.raises(SystemExit) as e:
        list(load_data())
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1 and message in err[0], err
