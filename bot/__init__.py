"""The Discord front end: a discord.py bot that turns /imagine into jobs on the queue (workers deliver results)."""
