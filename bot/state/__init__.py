"""State shared by every replica of docbot (conversations, feedback, grants, rate-limit counters), in one database.

``bot.state.database`` opens it (SQLite in the data directory by default, PostgreSQL when replicas share it); each
store module beside it defines its own tables on :data:`bot.state.database.METADATA` and creates them on first use.
"""
