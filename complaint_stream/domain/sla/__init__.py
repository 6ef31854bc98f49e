"""SLA clocks and escalation (时限管理与升级): calendars, clocks and the escalation ladder, as pure code."""
