"""The CuPy backend (``backend``), its CUDA kernels (``kernels.cu``), the launch planner with a host
emulation of the kernels' index arithmetic (``index_model``), and the planning of the fused passes the
``cupy-blocked`` executor runs (``passes``)."""
