"""Combining trained models: `weights` (the weighted average of members' probabilities and how its weights are
chosen), `ensemble` (an ensemble of runs written as a run of its own) and `langstack` (a run's per-language stack of
its network, frozen-feature and TF-IDF members). Loading either for prediction imports no trainer."""
