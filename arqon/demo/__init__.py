"""The live-tuning demo: ``scenarios`` (knobs and scripted changes), ``service`` (the simulated service, a Numba
loop), ``runs`` (the three runs of a scenario, their summary and the ``arqon demo`` report)."""
