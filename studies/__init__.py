"""The search floor: Optuna studies over the engine."""
