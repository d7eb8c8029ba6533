"""Old home of the distributed backends: ``langalign.distributed.ray_backend`` is now an alias of
:mod:`langalign.scale.ray_backend` (needs ``langalign[ray]``)."""
