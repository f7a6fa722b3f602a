"""Model builders: functions returning ``keras.Model`` (backbones, heads, lifters, VAEs)."""
