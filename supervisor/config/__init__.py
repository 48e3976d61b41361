"""The TOML configuration, one concern per module:

- types.py: shared field types (Duration, Secret, JmesPath, Name, Level), Strict
- sections.py: [supervisor], [redis], [postgres], [metrics], [ha], [sessions.NAME]
- watchdog_base.py: what every watchdog entry has, and the threshold shapes kinds share
- actuator_base.py: what every action entry has, and the body template placeholder check
- settings.py: the whole file (Settings) and its cross-references
- loading.py: find_config, load_config, environment overrides, errors, the redacted view

Each kind's own config class lives next to its implementation (supervisor/watchdogs/,
supervisor/actuators/); supervisor/kinds.py lists the kinds and builds the unions Settings
validates [[watchdogs]] and [actuators] against.

Import names from the module that defines them; this package re-exports nothing.
"""
