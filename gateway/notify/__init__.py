"""Notifications: the alerts' notifier (`notifier.py`) and its outbox in the state store
(`outbox.py`), the message and interface every channel shares (`message.py`) and the
channels themselves, one module each (`channels/`): a generic JSON webhook, e-mail over
SMTP, the WeCom (企业微信) and DingTalk (钉钉) group robots, and MQTT. Report delivery
(gateway/reports/delivery.py) uses the same channels."""
