"""What a run is made of: every option (TrainConfig) and the named presets, model surgery (cut,
head, preprocessing inside the model), the plan of what trains in each stage, optimizers and
schedules, and the stage-1 feature cache.
"""
