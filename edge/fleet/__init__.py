"""Many devices, one broker: MQTT topics and Home Assistant discovery, the broker connection, the forwarder
that sends the event log, and `edge watch`."""
