"""Distributed backends (optional extras). ``langalign.distributed.ray_backend`` needs ``langalign[ray]``."""
