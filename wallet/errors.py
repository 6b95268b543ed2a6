"""Errors meant for the user: one clear line, printed by the CLI, exit status 1."""


class WalletError(Exception):
    pass
