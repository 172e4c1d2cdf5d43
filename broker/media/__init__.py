"""The media repository: uploads, downloads and thumbnails behind ``mxc://`` URIs.

``repository`` holds the logic, ``files`` the on-disk layout, ``thumbnails`` the Pillow work,
``headers`` what served media must carry and ``streaming`` how big files reach the client.
"""

from broker.media.repository import MediaRepository

__all__ = ["MediaRepository"]
