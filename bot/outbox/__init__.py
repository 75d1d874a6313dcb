"""The one durable outbound path: staff alerts, patient replies, staff replies and check-ins."""
