"""One cog per concern; each module ends in `async def setup(bot)`."""
