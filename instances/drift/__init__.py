"""The nightly fleet drift report: every active instance previewed against the release it runs, and
what differs on its node recorded (DriftReport, InstanceDrift). Reads never write: nothing on a node
changes; a newly found or changed drift is notified once."""
