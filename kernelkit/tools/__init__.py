"""Tools that drive kernels from outside (client, kernelspecs, installer, doctor, bench); never
run inside a kernel process."""
