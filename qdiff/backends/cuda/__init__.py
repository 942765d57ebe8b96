"""The CuPy backend (``backend``), its CUDA kernels (``kernels.cu``) and the launch planner with a host
emulation of the kernels' index arithmetic (``index_model``)."""
