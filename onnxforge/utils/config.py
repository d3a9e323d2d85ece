"""``keras.utils.Config``: named values read and set as attributes or items, frozen on request, JSON out."""
from __future__ import annotations

__all__ = ["Config"]

import copy
import difflib
import json
from collections.abc import Iterator
from typing import Any

# Names that are the object's own (methods, properties, internals); every other attribute is a config entry.
_OWN = {"_config", "_frozen"}


class Config:
    """A dict-like holder of named settings (Keras 3's ``keras.utils.Config``).

    Example:
        >>> config = Config(learning_rate=0.1)
        >>> config.momentum = 0.9
        >>> config["seed"] = 1
        >>> config.learning_rate, sorted(config), config.to_json()
        (0.1, ['learning_rate', 'momentum', 'seed'], '{"learning_rate": 0.1, "momentum": 0.9, "seed": 1}')
        >>> config.freeze()
        >>> config.seed = 2
        Traceback (most recent call last):
        ...
        ValueError: Cannot mutate attribute(s) because the config is frozen.
    """

    def __init__(self, **kwargs: Any):
        object.__setattr__(self, "_config", dict(kwargs))
        object.__setattr__(self, "_frozen", False)

    @property
    def frozen(self) -> bool:
        """Whether changes are refused."""
        return self._frozen

    def freeze(self) -> None:
        object.__setattr__(self, "_frozen", True)

    def unfreeze(self) -> None:
        object.__setattr__(self, "_frozen", False)

    def _raise_if_frozen(self) -> None:
        if self._frozen:
            raise ValueError("Cannot mutate attribute(s) because the config is frozen.")

    def as_dict(self) -> dict[str, Any]:
        return copy.copy(self._config)

    def to_json(self) -> str:
        return json.dumps(self._config)

    def keys(self) -> Any:
        return self._config.keys()

    def values(self) -> Any:
        return self._config.values()

    def items(self) -> Any:
        return self._config.items()

    def pop(self, *args: Any) -> Any:
        self._raise_if_frozen()
        return self._config.pop(*args)

    def update(self, *args: Any, **kwargs: Any) -> None:
        self._raise_if_frozen()
        self._config.update(*args, **kwargs)

    def get(self, keyname: str, value: Any = None) -> Any:
        return self._config.get(keyname, value)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _OWN or hasattr(type(self), name):
            object.__setattr__(self, name, value)
            return
        self._raise_if_frozen()
        self._config[name] = value

    def __getattr__(self, name: str) -> Any:
        config = self.__dict__.get("_config", {})
        if name in config:
            return config[name]
        msg = f"Unknown attribute: '{name}'."
        close = difflib.get_close_matches(name, list(config), n=1, cutoff=0.7)
        if close:
            msg += f" Did you mean '{close[0]}'?"
        raise AttributeError(msg)

    def __setitem__(self, key: str, item: Any) -> None:
        self._raise_if_frozen()
        self._config[key] = item

    def __getitem__(self, key: str) -> Any:
        return self._config[key]

    def __delitem__(self, key: str) -> None:
        self._raise_if_frozen()
        del self._config[key]

    def __contains__(self, item: Any) -> bool:
        return item in self._config

    def __iter__(self) -> Iterator[str]:
        yield from sorted(self._config)

    def __len__(self) -> int:
        return len(self._config)

    def __repr__(self) -> str:
        return f"<Config {self._config}>"
