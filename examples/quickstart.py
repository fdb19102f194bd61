"""Ask/tell on a 2-D quadratic with its minimum at (2, -1).

Run: ``python examples/quickstart.py``
"""

import arqon

tuner = arqon.Tuner({
    "params": [
        {"name": "x", "min": -10.0, "max": 10.0},
        {"name": "y", "min": -10.0, "max": 10.0},
    ],
    "seed": 42,
    "budget": 200,
})


def objective(x, y):
    return (x - 2) ** 2 + (y + 1) ** 2


while not tuner.done:
    x, y = tuner.ask()  # a view of the tuner's proposal, in declaration order
    tuner.tell(objective(x, y))

print(f"recommended: {tuner.recommend()}")
print(f"true value there: {objective(**tuner.recommend()):.3g}")
print(f"best measured: {tuner.best.params} -> {tuner.best.value:.4f} after {tuner.n_evaluations} evaluations")
