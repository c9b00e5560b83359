"""Reading and writing files: images, checkpoints' tensors, atomic outputs; validation of inputs."""

from condsynth.io.atomic import atomic_dir, atomic_path, atomic_write_text
from condsynth.io.images import (
    IMAGE_EXTENSIONS,
    list_images,
    read_image,
    save_image,
    tensor_to_uint8,
    uint8_to_tensor,
)

__all__ = [
    "IMAGE_EXTENSIONS", "atomic_dir", "atomic_path", "atomic_write_text", "list_images",
    "read_image", "save_image", "tensor_to_uint8", "uint8_to_tensor",
]
