"""PyTorch -> ONNX -> TensorRT: export-friendly model, ONNX graphs and checks, engine builder.

Heavy dependencies (torch, onnx, onnxruntime, tensorrt) are imported inside the functions that
need them, so ``python export/build_engine.py --onnx ...`` runs on a Jetson without torch.
"""
