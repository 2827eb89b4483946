"""The data sets `archc train` and `archc evaluate` know, by name. Kept apart from
archc/data.py (which needs NumPy) so that the command line can list them
without importing it."""

NAMES = (
    "cifar10",
    "mnist",
    "fashion_mnist",
    "digits",
    "shapes",
    "colors",
    "shapes_colors",
    "synthetic",
)

# the modules a set needs beyond NumPy (digits is scikit-learn's bundled set)
NEEDS = {"digits": ("sklearn",)}
