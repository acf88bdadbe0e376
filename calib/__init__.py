"""INT8 calibration: clips (with the runtime's preprocessing), activation ranges, Q/DQ graphs,
TensorRT calibration caches and calibrators, and the FP16 graph for strongly typed builds."""
