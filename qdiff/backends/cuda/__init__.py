"""The CuPy backend (``backend``), its CUDA kernels (``kernels.cu``), the launch planner and the
kernels' index arithmetic in numpy (``index_model``), and the planning of the fused passes the
``cupy-blocked`` executor runs (``passes``)."""
