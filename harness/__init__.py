"""Loopback stand-ins and real service processes, shared by the tests and the benchmark."""
