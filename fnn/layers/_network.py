"""Networks as layers.

:func:`serial` composes layers into a :class:`Network`, which is itself a layer: it has
``forward``, ``backward``, ``name``, ``needs_key`` and the layer's init as
``init_with_shape``, so networks nest in ``serial`` as they are. Its ``backward`` runs the
layers in reverse (the chain rule, layer by layer).

What the forward hands the backward is ``fnn.layers._caches``; the gradients' containers and
dtypes, ``fnn.layers._gradients``; the compiled init and each layer's checked init,
``fnn.layers._network_init``; what a layer breaking the protocol is told, ``fnn.layers._errors``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import jax
import jax.numpy as jnp
import numpy as np

from fnn._dtypes import params_dtype
from fnn._keys import key as check_key
from fnn._native import native, native_tree
from fnn._per_key import per_key
from fnn._validate import UNTRACEABLE
from fnn._values import bound
from fnn.layers._base import (
    Array,
    ArrayLike,
    FeatureMismatchError,
    Layer,
    Shape,
    as_shape,
    check_layers,
    layer_repr,
    network_args,
    output_shape_of,
)
from fnn.layers._caches import Caches, forward_shapes
from fnn.layers._errors import (
    NAMED_ERRORS,
    backward_error,
    check_dparams,
    check_dx,
    describe,
    disagreeing_layer,
    forward_error,
)
from fnn.layers._gradients import in_containers_of, in_dtype_of
from fnn.layers._network_init import init_layer, init_program
from fnn.layers._samples import batch_of_one, one_sample


def _input_array(x: Any) -> Array:
    """A network's input given as a NumPy array or nested lists, as JAX takes it (weak types,
    promotion and ``__jax_array__`` its own); None, words and arrays of them named first."""
    if x is None:
        raise ValueError("x is required; got None")
    if isinstance(x, (str, bytes)):
        raise TypeError(f"x must hold numbers; got {type(x).__name__} {x!r}")
    if isinstance(x, np.ndarray) and x.dtype.kind in "USVmM":  # (an object array is native's to name)
        raise TypeError(f"x must hold numbers; got dtype {x.dtype}")
    return jnp.asarray(native(x, "x"))


@dataclass(frozen=True)
class Network:
    """A stack of layers, and a layer itself (see the module docstring); the ``net`` of the API.

    ``params`` is a list with one entry per layer (a nested network's entry is its own list).
    Networks compare by value: two built from the same description are equal, so compiled
    training programs cached on one serve the other.

    Built directly, ``Network(layers, names=(), name="serial")`` checks what :func:`serial`
    checks (a list of layers is taken as a tuple); ``names`` given must be unique, one per layer.

    Attributes:
        layers: The layers (and nested networks), in order.
        names: Each layer's unique name (``dense_0``, ``dropout_0``, ``dense_1``...).
        name: The network's own name (as a layer inside another network).

    Raises:
        TypeError: For ``layers`` that are not a tuple or list of Layers and Networks, ``names``
            not of str, or a ``name`` that is not a str.
        ValueError: For no layers, or ``names`` not one per layer, repeated or empty; for a
            name (``names``', ``name``, a layer's) holding ``"/"``, which :func:`fnn.summary`
            joins nested layers' names with (Keras refuses it too).

    Examples:
        >>> import fnn, jax, jax.numpy as jnp
        >>> net = fnn.serial(fnn.Dense(4, activation="relu"), fnn.Dense(2))
        >>> net
        Network(dense_0=Dense(4, relu), dense_1=Dense(2))
        >>> net.names, net.output_shape((3,))
        (('dense_0', 'dense_1'), (2,))
        >>> params = net.init(jax.random.PRNGKey(0), (3,))
        >>> x = jnp.ones((5, 3))
        >>> y, cache = net.forward(params, x)
        >>> dparams, dx = net.backward(params, cache, jnp.ones_like(y))
        >>> y.shape, dparams[0]["w"].shape, dx.shape
        ((5, 2), (3, 4), (5, 3))
    """

    layers: tuple[Layer | Network, ...]
    names: tuple[str, ...] = field(default=())
    name: str = "serial"

    def __post_init__(self) -> None:
        layers, names = network_args(self.layers, self.names, self.name, Network)
        object.__setattr__(self, "layers", layers)
        object.__setattr__(self, "names", names if names is not None else _unique_names(layers))

    @property
    def needs_key(self) -> bool:
        """True if a layer draws randomness in training (Dropout): ``apply``/``forward`` with
        ``train=True`` then need ``key=``.

        Returns:
            Whether any layer needs a key.
        """
        return any(layer.needs_key for layer in self.layers)

    def init(self, key: Array, input_shape: int | Sequence[int], dtype: Any = jnp.float32) -> list:
        """Initial params (a list, one entry per layer) for inputs of ``input_shape`` (no batch axis).

        All the layers' initializers run as ONE compiled program, shared by equal networks (drawn
        eagerly, each initializer shape would compile programs of its own). It draws what
        :meth:`init_with_shape` draws, from the same keys: uniform draws and constants are
        equal bit for bit; normal draws, truncated or not, agree to float rounding, a few units
        in the last place, as the compiled program may round the normal's transform (an inverse
        error function) its own way. A layer whose init cannot be traced runs eagerly instead.

        Args:
            key: One PRNG key (``jax.random.key(seed)`` or ``jax.random.PRNGKey(seed)``; traced
                ones too, under ``jit`` or ``vmap``).
            input_shape: The input's shape without the batch axis (an int for one axis).
            dtype: The params' dtype: float16, bfloat16, float32 or float64 (None: the default
                float dtype, float64 with ``jax_enable_x64``; float64 without x64 is float32,
                with one warning).

        Returns:
            The params: a list with one entry per layer (a Dense entry is ``{"w": (in, out),
            "b": (out,)}``, a layer without parameters has ``{}``).

        Raises:
            ValueError: For an empty shape or a size below 1; for an array of several keys
                (``jax.random.split``'s: vmap ``init`` over them) or a raw key of the wrong shape.
            TypeError: For a ``key`` that is not a PRNG key (an int seed, None); for a shape that
                is not an int or a tuple of ints; for a ``dtype`` that is not one of those four
                (an integer dtype, float8); for a layer whose init breaks the protocol (the
                message names the layer).
        """
        # before the compiled init: jit would take 0 for an int32 array, split would then fail
        # on "key data"; only the key's shape and dtype are read, so a traced key passes
        key = check_key("key", key)
        shape = as_shape(input_shape)
        dtype = params_dtype("dtype", dtype)
        cache_key = (self, shape, dtype)
        try:
            hash(cache_key)
        except TypeError:  # not cacheable: a program compiled on every call would cost more than eager
            return self.init_with_shape(key, shape, dtype)[1]
        try:
            return init_program(*cache_key)(key)
        except UNTRACEABLE:
            return self.init_with_shape(key, shape, dtype)[1]

    def init_with_shape(
        self, key: Array, input_shape: int | Sequence[int], dtype: Any = jnp.float32
    ) -> tuple[Shape, list]:
        """``(output_shape, params)``: the network's init as a layer's.

        Args:
            key: One PRNG key.
            input_shape: The input's shape without the batch axis (an int for one axis).
            dtype: The params' dtype: float16, bfloat16, float32 or float64 (None: the default
                float dtype, float64 with ``jax_enable_x64``; float64 without x64 is float32,
                with one warning).

        Returns:
            ``(output_shape, params)``.

        Raises:
            ValueError: For an empty shape or a size below 1; for several keys, or a raw key of
                the wrong shape.
            TypeError: For a ``key`` that is not a PRNG key, a bad shape or dtype, or a layer
                whose init breaks the protocol.
        """
        key = check_key("key", key)
        shape = as_shape(input_shape)
        dtype = params_dtype("dtype", dtype)
        params = []
        for i, k in enumerate(jax.random.split(key, len(self.layers))):
            shape, p = init_layer(self, i, k, shape, dtype)
            params.append(p)
        return tuple(shape), params

    def output_shape(self, input_shape: int | Sequence[int]) -> Shape:
        """The output shape (without the batch axis) for inputs of ``input_shape``.

        Args:
            input_shape: The input's shape without the batch axis (an int for one axis).

        Returns:
            The output shape; nothing is allocated (the inits are traced).
        """
        return output_shape_of(self.init_with_shape, input_shape)

    def forward(
        self, params: list, x: ArrayLike, *, key: Array | None = None, train: bool = False
    ) -> tuple[Array, list]:
        """``(y, cache)``: the output and what :meth:`backward` needs. ``x``: (batch, *input_shape),
        a jax array or anything ``jnp.asarray`` takes (a NumPy array, nested lists).

        Args:
            params: The network's params (a list, one entry per layer).
            x: A batch of inputs.
            key: A PRNG key for the layers that draw randomness in training (Dropout).
            train: Training mode (Dropout active).

        Returns:
            ``(y, cache)``: the output and a list with one cache per layer (which also records
            the shapes the forward saw, for :meth:`backward`'s checks).

        Raises:
            ValueError: If ``params`` does not hold one entry per layer, ``x`` is None, or Dropout
                trains without ``key``.
            FeatureMismatchError: If ``x`` has the wrong number of features (a ValueError naming
                the layer).
            TypeError: For an ``x`` that does not hold numbers, a ``train`` given as a
                string, or a layer whose forward breaks the protocol (the message names it). A
                TypeError, ValueError, KeyError, IndexError or AttributeError raised in a layer's
                own code is raised again as the same class, naming the layer.
        """
        params = self._checked_params(params)
        # a word is always true: "no" would train (a switch read for its truth, 1 or a traced
        # bool under the user's jit, stays welcome)
        if isinstance(train, (str, bytes)):
            raise TypeError(f"train must be a bool, got {type(train).__name__} {train!r}")
        if not isinstance(x, jax.Array):  # tracers are jax Arrays: nothing changes under jit
            x = _input_array(x)
        keys = self._layer_keys(key, train)
        caches, shapes, dtypes = [], [tuple(x.shape)], [x.dtype]
        for i, (layer, p) in enumerate(zip(self.layers, params, strict=True)):
            try:
                out = layer.forward(p, x, key=keys[i], train=train)
            except FeatureMismatchError as e:
                blame = disagreeing_layer(self, i, shapes, e)
                raise FeatureMismatchError(blame or f"layer {i} ({self.names[i]}) {e}") from None
            except NAMED_ERRORS as err:
                if isinstance(err, UNTRACEABLE):  # JAX's own words on tracing are the clearest
                    raise
                raise forward_error(self, i, shapes, err) from err
            if not (isinstance(out, tuple) and len(out) == 2 and hasattr(out[0], "shape")):
                raise TypeError(
                    f"layer {i} ({self.names[i]}): forward(params, x, *, key, train) must return (y, cache) "
                    f"(the Layer protocol; cache holds what backward needs); got {describe(out)}"
                )
            x, c = out
            caches.append(c)
            shapes.append(tuple(x.shape))
            dtypes.append(x.dtype)
        return x, Caches(caches, tuple(shapes), tuple(dtypes))

    def apply(self, params: list, x: ArrayLike, *, key: Array | None = None, train: bool = False) -> Array:
        """The network's output ``y`` for a batch ``x`` (a jax array, a NumPy array or nested
        lists); pure, jittable and vmappable. An ``x`` of rank 1 is one sample (as a per-example
        ``jax.vmap`` hands it; a batch has at least 2 axes): run as a batch of one, its output
        without the batch axis.

        ``x`` is used in its own dtype, by JAX's type promotion: float32 ``x`` through float16
        params computes (and returns) float32. :func:`fnn.predict`, :func:`fnn.fit` and
        :func:`fnn.evaluate` first cast ``x`` to the params' dtype, so their float16 params
        compute in float16; ``net.apply(params, x.astype(params_dtype))`` does the same.

        Args:
            params: The network's params.
            x: A batch of inputs, or one sample of rank 1.
            key: A PRNG key for the layers that draw randomness in training (Dropout).
            train: Training mode (Dropout active).

        Returns:
            The output ``y``.

        Raises:
            ValueError: As :meth:`forward`.
            FeatureMismatchError: If ``x`` has the wrong number of features.
        """
        if one_sample(x):  # Flatten, Reshape... read axis 0 as the samples'
            return self.forward(params, batch_of_one(x), key=key, train=train)[0][0]
        return self.forward(params, x, key=key, train=train)[0]

    __call__ = apply

    def backward(self, params: list, cache: list, dy: Array) -> tuple[list, Array]:
        """Reverse pass: ``(dparams, dx)`` for the output cotangent ``dy`` (chain rule, last layer first).

        Args:
            params: The network's params.
            cache: The cache :meth:`forward` returned.
            dy: The cotangent of the output (e.g. the loss's gradient with respect to ``y_pred``).

        Returns:
            ``(dparams, dx)``: gradients in the structure of ``params``, containers included
            (a tuple of params gives a tuple, an OrderedDict entry an OrderedDict, as
            ``jax.grad`` keeps them), and of the input.

        Raises:
            ValueError: If ``params`` does not hold one entry per layer (or ``cache`` fewer), a layer's
                ``dparams`` does not have its params' structure and shapes, or a layer after the
                first returns a ``dx`` that is None or (where ``cache`` records the forward's
                shapes) not of its input's shape (the message names the layer).
            TypeError: For a ``cache`` that is no sequence (None), or a layer whose backward
                breaks the protocol. Errors raised in a layer's own code are raised again as in
                :meth:`forward`, naming the layer.
        """
        params = self._checked_params(params)
        if not (hasattr(cache, "__getitem__") and hasattr(cache, "__len__")):
            raise TypeError(f"cache must be the list forward returned (one cache per layer); got {describe(cache)}")
        if len(cache) < len(self.layers):
            raise ValueError(
                f"cache must be what this network's forward returned, one cache per layer ({len(self.layers)}); "
                f"got {len(cache)}"
            )
        grads, dx = self._backward_layers(params, cache, native(dy, "dy"))
        return in_containers_of(params, grads), dx

    def _backward_layers(self, params: list, cache: list, dy: Array) -> tuple[list, Array]:
        """:meth:`backward`'s pass through the layers, last first: the layers' ``dparams`` in a list
        (``params`` checked by the caller)."""
        shapes = forward_shapes(cache, len(self.layers), dy)
        grads: list = [None] * len(self.layers)
        for i in reversed(range(len(self.layers))):
            try:
                out = self.layers[i].backward(params[i], cache[i], dy)
            except NAMED_ERRORS as err:
                if isinstance(err, UNTRACEABLE):
                    raise
                raise backward_error(self, i, dy, shapes, err) from err
            if not (isinstance(out, tuple) and len(out) == 2):
                raise TypeError(
                    f"layer {i} ({self.names[i]}): backward(params, cache, dy) must return (dparams, dx) "
                    f"(the Layer protocol); got {describe(out)}"
                )
            grads[i], dy = out
            grads[i] = in_containers_of(params[i], grads[i])
            if i:  # the first layer's dx is the input gradient, which not every caller asks for
                check_dx(self, i, dy, shapes, None if shapes is None else cast(Caches, cache).dtypes)
            if grads[i] is None and not jax.tree.leaves(params[i]):
                # a layer without params may say so with None (as torch's backward does); its
                # gradient is its (empty) params' structure
                grads[i] = jax.tree.map(lambda p: p, params[i])
            check_dparams(i, self.names[i], params[i], grads[i])
            # a gradient takes its parameter's dtype, as jax.grad's does (bfloat16 params, float32
            # data); canonicalized: NumPy float64 params without x64 compute in float32, and
            # astype(float64) there warns once per leaf
            grads[i] = jax.tree.map(in_dtype_of, grads[i], params[i])
        return grads, dy

    def as_layer(self, name: str | None = None) -> Layer:
        """This network as a :class:`Layer` tuple, of ``init_with_shape``, ``forward`` and
        ``backward`` (a network is no ``Layer`` instance, but nests in :func:`serial` as it is:
        this is for code that wants the tuple).

        Args:
            name: The layer's name (None: the network's).

        Returns:
            A :class:`Layer` of the network's functions.
        """
        # bound to the network by value, not as bound methods (equal only for the same object):
        # equal networks give equal layers, which share compiled programs, pickled or copied too
        cls = type(self)
        funcs = (bound(cls.init_with_shape, self), bound(cls.forward, self), bound(cls.backward, self))
        return Layer(*funcs, name or self.name, self.needs_key)

    def _layer_keys(self, key: Array | None, train: bool) -> list:
        if key is None or not train:
            return [None] * len(self.layers)
        n = sum(layer.needs_key for layer in self.layers)
        if not n:
            return [None] * len(self.layers)
        # a wrong key named as init names it; a NumPy raw key of the other byte order by its value
        key = check_key("key", key)
        # per_key: vmapped over models (fit_many), each model's keys are its own key's, as in fit
        sub = iter(per_key(lambda k: jax.random.split(k, n), key))
        return [next(sub) if layer.needs_key else None for layer in self.layers]

    def _checked_params(self, params: Any) -> Any:
        """``params`` checked to hold one entry per layer, NumPy leaves in native byte order (a
        jax array times a big-endian NumPy kernel would read its bytes unswapped)."""
        if not isinstance(params, (list, tuple)) or len(params) != len(self.layers):
            got = (
                f"a {type(params).__name__} of length {len(params)}"
                if isinstance(params, (list, tuple))
                else type(params).__name__
            )
            raise ValueError(f"params must be a list with one entry per layer ({len(self.layers)}), got {got}")
        return native_tree(params, "params")

    def __repr__(self) -> str:
        """``Network(dense_0=Dense(4, relu), dense_1=Dense(2))``: each layer's name, kind and
        every option that sets it apart from the defaults (``Dense(3, kernel_initializer=he_normal)``,
        an initializer by its name where one gives it, else by the call that builds it), so
        networks of built-in layers that differ print differently. A layer of your own shows as
        ``Layer``, and a function of yours (activation, initializer) by its name. An activation
        shows its non-default options (``Dense(4, leaky_relu(negative_slope=0.5))``), the network
        its ``name`` where not ``"serial"``."""
        shown = (repr(layer) if isinstance(layer, Network) else layer_repr(layer) for layer in self.layers)
        parts = [f"{n}={s}" for n, s in zip(self.names, shown, strict=True)]
        return f"Network({', '.join(parts + ([f'name={self.name!r}'] if self.name != 'serial' else []))})"


def _unique_names(layers: Sequence[Layer | Network]) -> tuple[str, ...]:
    counts: dict[str, int] = {}
    names = []
    for layer in layers:
        n = counts.get(layer.name, 0)
        counts[layer.name] = n + 1
        names.append(f"{layer.name}_{n}")
    return tuple(names)


def serial(*layers: Layer | Network, name: str = "serial") -> Network:
    """Composes layers (and networks, which are layers) in order:
    ``serial(Dense(64, "relu"), Dropout(0.1), Dense(10))``.

    Args:
        *layers: Layers and networks, in order (at least one).
        name: The network's name (as a layer inside another network).

    Returns:
        The :class:`Network`.

    Raises:
        ValueError: Without layers; for a ``name`` or a layer's name holding ``"/"`` (which
            :func:`fnn.summary` joins nested layers' names with).
        TypeError: For an argument that is not a Layer or a Network, or a ``name`` that is not a str.

    Examples:
        >>> import fnn
        >>> block = fnn.serial(fnn.Dense(8, activation="relu"), fnn.Dropout(0.1))
        >>> net = fnn.serial(block, fnn.Dense(2))  # networks nest as layers
        >>> net.names, net.needs_key
        (('serial_0', 'dense_0'), True)
    """
    check_layers("serial", layers, "argument {}", name, Network)
    return Network(tuple(layers), name=name)
