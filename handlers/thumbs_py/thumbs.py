"""Thumbnails of dropped images, as the textbook Lambda S3 example makes them, but reading
the local file sluice names in the event (Records[].s3.object.path) and writing the
thumbnail into a folder instead of another bucket.

Step config (pipelines/thumbnails-py.json):
  size    longest side of a thumbnail, in pixels (default 128)
  output  folder for thumbnails (default var/thumbnails-py); a relative path starts from
          the daemon's working folder
Needs Pillow (Debian: apt-get install python3-pil).
"""

import logging
import os
import tempfile
from urllib.parse import unquote_plus

from PIL import Image  # imported once per worker: part of the cold start

logger = logging.getLogger()
logger.setLevel(logging.INFO)


def resize_image(image_path, resized_path, size):
    with Image.open(image_path) as image:
        fmt = image.format
        image.thumbnail((size, size))
        # Written beside the target and renamed, so nobody sees half a thumbnail.
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(resized_path), prefix=".thumb-")
        try:
            with os.fdopen(fd, "wb") as f:
                image.save(f, format=fmt)
            os.replace(tmp, resized_path)
        except BaseException:
            os.unlink(tmp)
            raise
        return image.size


def lambda_handler(event, context):
    config = getattr(context, "config", None) or {}
    size = int(config.get("size", 128))
    output = config.get("output", "var/thumbnails-py")
    made = []
    for record in event["Records"]:
        obj = record["s3"]["object"]
        key = unquote_plus(obj["key"])
        source = obj["path"]
        target = os.path.join(output, os.path.dirname(key), "thumb-" + os.path.basename(key))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        width, height = resize_image(source, target, size)
        logger.info("thumbnail of %s: %s (%dx%d)", key, target, width, height)
        made.append({"key": key, "source": source, "thumbnail": os.path.abspath(target),
                     "width": width, "height": height})
    return {"thumbnails": made}
