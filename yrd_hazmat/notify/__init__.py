"""The notifier: alerts and incident records to the people subscribed to them (webhooks,
the duty rooms' chat robots, SMS, e-mail), each delivery once, retried, recorded, with
quiet hours and a rate limit per subscription; deadlines and their escalation."""
