"""Param groups (parse, resolve, build, explain), freezing, and the lr schedules."""
