"""Ultra Monkey director agent: pure Python, no Django.

Everything under this package runs on a director (a Linux box with IPVS) and must stay installable there
without the web application: it receives desired state as JSON and owns the kernel.
"""
