"""PyTorch -> ONNX -> TensorRT: export-friendly model, ONNX graphs and checks, engine builder.

Heavy dependencies (torch, onnx, onnxruntime, tensorrt) are imported inside the functions that
need them, so ``python export/build_engine.py --onnx ...`` runs on a Jetson without torch.
"""

from pathlib import Path

# the plugin's CUDA/C++ sources and CMake project, shipped as package data (build them on the target)
PLUGIN_SOURCES = Path(__file__).resolve().parent / "plugin"
