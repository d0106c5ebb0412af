"""Numerical checks of TensorFlow against independent references (`dilbench check ...`)."""
