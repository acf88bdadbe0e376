"""GStreamer camera pipelines for OpenCV, and the check that this OpenCV can open them.

On a Jetson, the CSI camera (``nvarguscamerasrc``) is only reachable through GStreamer, and the
opencv-python wheels on PyPI are built *without* GStreamer. So a pipeline string on such an OpenCV must
fail at once with the explanation, not open an empty stream.
"""

from __future__ import annotations

import functools
import re

import cv2

__all__ = [
    "GStreamerUnavailableError",
    "csi_pipeline",
    "usb_pipeline",
    "gstreamer_available",
    "is_pipeline",
    "require_gstreamer",
]


class GStreamerUnavailableError(RuntimeError):
    """A GStreamer pipeline was given to an OpenCV built without GStreamer."""


def is_pipeline(source: str) -> bool:
    """A GStreamer pipeline string: elements joined with ``!``."""
    return "!" in source


@functools.lru_cache(maxsize=1)
def gstreamer_available() -> bool:
    """Whether this OpenCV was built with GStreamer (``cv2.getBuildInformation()``)."""
    info = cv2.getBuildInformation()
    match = re.search(r"^\s*GStreamer:\s*(\S+)", info, flags=re.MULTILINE)
    return bool(match) and match.group(1).upper() not in ("NO", "OFF")


def require_gstreamer(pipeline: str) -> None:
    if gstreamer_available():
        return
    raise GStreamerUnavailableError(
        f"cannot open the GStreamer pipeline {pipeline!r}: this OpenCV ({cv2.__version__}, "
        f"{cv2.__file__}) was built without GStreamer (see cv2.getBuildInformation(): "
        "'GStreamer: NO'). The opencv-python / opencv-python-headless wheels on PyPI never include "
        "GStreamer. On a Jetson use JetPack's own OpenCV (python3-opencv from the JetPack/L4T "
        "repository) and do not pip-install opencv-python over it; elsewhere build OpenCV with "
        "-DWITH_GSTREAMER=ON, or pass a camera index (e.g. --source 0), a file or an RTSP URL instead."
    )


def csi_pipeline(sensor_id: int = 0, width: int = 1280, height: int = 720, fps: int = 30,
                 flip_method: int = 0) -> str:
    """Jetson CSI camera (Argus) -> BGR frames for ``cv2.VideoCapture(p, cv2.CAP_GSTREAMER)``.

    ``appsink drop=1`` keeps GStreamer itself from queueing stale frames."""
    flip = f" flip-method={flip_method}" if flip_method else ""
    return (
        f"nvarguscamerasrc sensor-id={sensor_id} ! "
        f"video/x-raw(memory:NVMM),width={width},height={height},framerate={fps}/1 ! "
        f"nvvidconv{flip} ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! "
        "appsink drop=1"
    )


def usb_pipeline(device: str = "/dev/video0", width: int = 640, height: int = 480, fps: int = 30,
                 mjpeg: bool = False) -> str:
    """USB (V4L2) camera -> BGR frames through GStreamer. A plain index (``--source 0``) also works
    without GStreamer; the pipeline is for cameras that need a caps or MJPEG decode."""
    if mjpeg:
        caps = f"image/jpeg,width={width},height={height},framerate={fps}/1 ! jpegdec"
    else:
        caps = f"video/x-raw,width={width},height={height},framerate={fps}/1"
    return (
        f"v4l2src device={device} ! {caps} ! videoconvert ! video/x-raw,format=BGR ! appsink drop=1"
    )
