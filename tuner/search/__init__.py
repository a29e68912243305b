"""The engine of a search: Keras Tuner trains and times, an Optuna study decides and stores."""
