"""The backup radio link: airtime, the EU868 duty cycle, the send queue, the transports.

docs/radio.md says why an Ebyte E22 in transparent mode, how frames travel and how to test it.
"""
