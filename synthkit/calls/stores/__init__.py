"""Where a run keeps the state it shares with other processes, chosen in one place: files of this machine
(store unset) or a Redis server (store=redis://host:port/db). Every refusal (a network filesystem, a store that
cannot be reached or refuses the login) comes from here, before any request or output file."""

from synthkit.calls.stores.base import BudgetExhausted, Stores, StoreSettings

__all__ = ["BudgetExhausted", "StoreSettings", "Stores", "check_store", "open_stores"]


def open_stores(settings: StoreSettings, llm, price, use_cache: bool) -> Stores:
    """The cache (when `use_cache`), limits and budget of a run whose model is `llm`, priced at `price`."""
    if settings.url:
        from synthkit.calls.stores.shared import RedisStores

        return RedisStores.open(settings, llm, price, use_cache)
    from synthkit.calls.stores.local import LocalStores

    return LocalStores.open(settings, llm, price, use_cache)


def check_store(settings: StoreSettings) -> None:
    """Refuse, as one line, a store that cannot be used (before a sweep launches jobs that would all fail)."""
    if settings.url:
        from synthkit.calls.stores.shared import connect

        connect(settings)  # checks the URL, the server and the login; opens nothing that needs closing
