"""The wire side of kefu-pulse: the Faust app and CLI, topics, event decoding, dead letters."""
