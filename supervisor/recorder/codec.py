"""The recorder's number encodings: zigzag varints and delta-of-delta times. Pure;
every decoder refuses what it cannot read with ValueError (a torn or
foreign file is outside input)."""

from __future__ import annotations

from collections.abc import Sequence

NONE = 0  # the value symbol for "no value" (None, NaN, infinity): values are shifted by one


def zigzag(number: int) -> int:
    """0, -1, 1, -2, 2... -> 0, 1, 2, 3, 4...: small magnitudes become small varints."""
    return number * 2 if number >= 0 else -number * 2 - 1


def unzigzag(number: int) -> int:
    return number >> 1 if not number & 1 else -((number + 1) >> 1)


def put_varint(out: bytearray, number: int) -> None:
    """LEB128: seven bits a byte, the high bit says another byte follows."""
    while number > 0x7F:
        out.append((number & 0x7F) | 0x80)
        number >>= 7
    out.append(number)


class Reader:
    """Reads varints from a buffer; past its end is a ValueError, never garbage."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def varint(self) -> int:
        data, pos, shift, number = self.data, self.pos, 0, 0
        while True:
            if pos >= len(data):
                raise ValueError("truncated varint")
            byte = data[pos]
            pos += 1
            number |= (byte & 0x7F) << shift
            if byte < 0x80:
                self.pos = pos
                return number
            shift += 7
            if shift > 640:  # far beyond any number we write
                raise ValueError("varint too long")

    def signed(self) -> int:
        return unzigzag(self.varint())

    def take(self, size: int) -> bytes:
        if size < 0 or self.pos + size > len(self.data):
            raise ValueError("truncated field")
        chunk = self.data[self.pos : self.pos + size]
        self.pos += size
        return chunk


def put_times(out: bytearray, times_ms: Sequence[int]) -> None:
    """Delta of deltas: runs at a steady interval cost one byte each."""
    previous, delta = 0, 0
    for index, at in enumerate(times_ms):
        new_delta = at - previous
        put_varint(out, zigzag(new_delta if index == 0 else new_delta - delta))
        previous, delta = at, new_delta


def get_times(reader: Reader, count: int) -> list[int]:
    times, previous, delta = [], 0, 0
    for index in range(count):
        step = reader.signed()
        delta = step if index == 0 else delta + step
        previous += delta
        times.append(previous)
    return times


def value_symbol(quantum: int | None) -> int:
    """A quantised value as an unsigned symbol; None -> NONE."""
    return NONE if quantum is None else zigzag(quantum) + 1


def symbol_value(symbol: int) -> int | None:
    return None if symbol == NONE else unzigzag(symbol - 1)
