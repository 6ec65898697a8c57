"""What the `bin/kslim-*` commands do, one module each; `bin/` holds only their flags.

Each function takes plain values (paths, numbers), checks them before TensorFlow
loads where it can, writes atomically and never over its input.
"""
