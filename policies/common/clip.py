"""CLIP (ResNet image tower + text transformer) written from the CLIP paper's description.

Why it lives here: open-clip and timm import torchvision, which has no working CPU build with our
torch, and DecisionNCE / Robo-MUTUAL need CLIP RN50 whose state dict must load *strictly* from
OpenAI's RN50 weights or the official DecisionNCE checkpoints. Parameter and buffer names follow
OpenAI's module layout (``visual.layer1.0.conv1.weight``, ``visual.attnpool.q_proj.weight``,
``transformer.resblocks.0.attn.in_proj_weight``, ``text_projection``, ...), so those files load
without renaming. ``CLIPConfig.rn50()`` is the paper's size (D = 1024, ~102M parameters),
``CLIPConfig.small()`` a CPU-sized one with the same code path.

Tokenizers: ``ClipBPETokenizer`` is CLIP's byte-level BPE, reading the merges file
(``bpe_simple_vocab_16e6.txt.gz``) from a path the user supplies (nothing is downloaded);
``HashWordTokenizer`` needs no vocabulary file and serves the small configuration.
"""

from __future__ import annotations

import functools
import gzip
import html
import logging
import math
import zlib
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from policystack.errors import CheckpointError, ConfigError

log = logging.getLogger(__name__)

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
# extra integer entries in OpenAI's exported state dict that are not tensors of the model
OPENAI_META_KEYS = ("input_resolution", "context_length", "vocab_size")


@dataclass
class CLIPConfig:
    """Sizes of a CLIP model with a ModifiedResNet image tower (OpenAI's ``build_model`` fields)."""

    embed_dim: int = 1024
    image_resolution: int = 224
    vision_layers: tuple[int, int, int, int] = (3, 4, 6, 3)
    vision_width: int = 64
    context_length: int = 77
    vocab_size: int = 49408
    transformer_width: int = 512
    transformer_heads: int = 8
    transformer_layers: int = 12

    def __post_init__(self) -> None:
        self.vision_layers = tuple(int(x) for x in self.vision_layers)
        if len(self.vision_layers) != 4:
            raise ConfigError(f"vision_layers needs 4 stage depths, got {self.vision_layers}")
        if self.image_resolution % 32:
            raise ConfigError(f"image_resolution {self.image_resolution} must be a multiple of 32 "
                              "(the ModifiedResNet downsamples 32x before attention pooling)")
        if (self.vision_width * 32) % 64:
            raise ConfigError("vision_width * 32 must be a multiple of 64 (attention-pool heads of 64)")
        if self.transformer_width % self.transformer_heads:
            raise ConfigError("transformer_width must be divisible by transformer_heads")

    @classmethod
    def rn50(cls) -> "CLIPConfig":
        return cls()

    @classmethod
    def small(cls) -> "CLIPConfig":
        """CPU size: 64x64 input, one bottleneck per stage, width 16, 2-layer text transformer, D=128."""
        return cls(embed_dim=128, image_resolution=64, vision_layers=(1, 1, 1, 1), vision_width=16,
                   context_length=16, vocab_size=2048, transformer_width=128, transformer_heads=4,
                   transformer_layers=2)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["vision_layers"] = list(self.vision_layers)
        return d

    @classmethod
    def from_state_dict(cls, sd: Mapping[str, torch.Tensor]) -> "CLIPConfig":
        """Infer the sizes from an OpenAI-layout state dict (as CLIP's ``build_model`` does)."""
        try:
            layers = tuple(len({k.split(".")[2] for k in sd if k.startswith(f"visual.layer{b}.")})
                           for b in (1, 2, 3, 4))
            width = sd["visual.layer1.0.conv1.weight"].shape[0]
            out_w = round((sd["visual.attnpool.positional_embedding"].shape[0] - 1) ** 0.5)
            tw = sd["ln_final.weight"].shape[0]
            return cls(embed_dim=sd["text_projection"].shape[1], image_resolution=out_w * 32,
                       vision_layers=layers, vision_width=width,
                       context_length=sd["positional_embedding"].shape[0],
                       vocab_size=sd["token_embedding.weight"].shape[0], transformer_width=tw,
                       transformer_heads=tw // 64 if tw >= 64 else 1,
                       transformer_layers=len({k.split(".")[2] for k in sd
                                               if k.startswith("transformer.resblocks.")}))
        except KeyError as e:
            raise CheckpointError(f"not a CLIP ResNet state dict: it lacks {e}") from e


# ----- image tower -------------------------------------------------------------------------------
class Bottleneck(nn.Module):
    """ResNet bottleneck with CLIP's anti-aliasing: strided convs replaced by avg-pool after conv2."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu2 = nn.ReLU(inplace=True)
        self.avgpool = nn.AvgPool2d(stride) if stride > 1 else nn.Identity()
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu3 = nn.ReLU(inplace=True)
        self.downsample = None
        if stride > 1 or inplanes != planes * self.expansion:
            self.downsample = nn.Sequential(OrderedDict([
                ("-1", nn.AvgPool2d(stride)),
                ("0", nn.Conv2d(inplanes, planes * self.expansion, 1, stride=1, bias=False)),
                ("1", nn.BatchNorm2d(planes * self.expansion))]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.relu2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(self.avgpool(out)))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu3(out + identity)


class AttentionPool2d(nn.Module):
    """QKV attention of the mean token over all spatial tokens (CLIP's replacement for global pooling)."""

    def __init__(self, spatial_dim: int, embed_dim: int, num_heads: int, output_dim: int):
        super().__init__()
        self.positional_embedding = nn.Parameter(torch.randn(spatial_dim ** 2 + 1, embed_dim) / embed_dim ** 0.5)
        self.k_proj = nn.Linear(embed_dim, embed_dim)
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.v_proj = nn.Linear(embed_dim, embed_dim)
        self.c_proj = nn.Linear(embed_dim, output_dim)
        self.num_heads = num_heads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(2).permute(2, 0, 1)                       # (HW, B, C)
        x = torch.cat([x.mean(dim=0, keepdim=True), x], dim=0)  # (HW+1, B, C)
        if x.shape[0] != self.positional_embedding.shape[0]:
            raise ValueError(f"attention pool expects {self.positional_embedding.shape[0] - 1} spatial tokens, "
                             f"got {x.shape[0] - 1}: feed images at the model's image_resolution")
        x = x + self.positional_embedding[:, None, :].to(x.dtype)
        out, _ = F.multi_head_attention_forward(
            query=x[:1], key=x, value=x, embed_dim_to_check=x.shape[-1], num_heads=self.num_heads,
            q_proj_weight=self.q_proj.weight, k_proj_weight=self.k_proj.weight,
            v_proj_weight=self.v_proj.weight, in_proj_weight=None,
            in_proj_bias=torch.cat([self.q_proj.bias, self.k_proj.bias, self.v_proj.bias]),
            bias_k=None, bias_v=None, add_zero_attn=False, dropout_p=0.0,
            out_proj_weight=self.c_proj.weight, out_proj_bias=self.c_proj.bias,
            use_separate_proj_weight=True, training=self.training, need_weights=False)
        return out.squeeze(0)


class ModifiedResNet(nn.Module):
    """CLIP's ResNet: 3-conv stem + avg-pool, anti-aliased bottlenecks, attention pooling to ``output_dim``."""

    def __init__(self, layers: Sequence[int], output_dim: int, heads: int, input_resolution: int = 224,
                 width: int = 64):
        super().__init__()
        self.output_dim = output_dim
        self.input_resolution = input_resolution
        self.conv1 = nn.Conv2d(3, width // 2, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width // 2)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(width // 2, width // 2, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width // 2)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv3 = nn.Conv2d(width // 2, width, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(width)
        self.relu3 = nn.ReLU(inplace=True)
        self.avgpool = nn.AvgPool2d(2)
        self._inplanes = width
        self.layer1 = self._make_layer(width, layers[0])
        self.layer2 = self._make_layer(width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(width * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(width * 8, layers[3], stride=2)
        embed_dim = width * 32
        self.attnpool = AttentionPool2d(input_resolution // 32, embed_dim, heads, output_dim)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        mods = [Bottleneck(self._inplanes, planes, stride)]
        self._inplanes = planes * Bottleneck.expansion
        mods += [Bottleneck(self._inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.relu2(self.bn2(self.conv2(x)))
        x = self.avgpool(self.relu3(self.bn3(self.conv3(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.attnpool(x)


# ----- text tower --------------------------------------------------------------------------------
class QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class ResidualAttentionBlock(nn.Module):
    def __init__(self, d_model: int, n_head: int):
        super().__init__()
        self.attn = nn.MultiheadAttention(d_model, n_head)
        self.ln_1 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(OrderedDict([("c_fc", nn.Linear(d_model, d_model * 4)),
                                              ("gelu", QuickGELU()),
                                              ("c_proj", nn.Linear(d_model * 4, d_model))]))
        self.ln_2 = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False, attn_mask=mask)[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int):
        super().__init__()
        self.width, self.layers = width, layers
        self.resblocks = nn.Sequential(*[ResidualAttentionBlock(width, heads) for _ in range(layers)])

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        for blk in self.resblocks:
            x = blk(x, mask)
        return x


class CLIP(nn.Module):
    """The dual encoder. ``with_logit_scale=False`` drops the learned temperature (DecisionNCE fixes it)."""

    def __init__(self, cfg: CLIPConfig, with_logit_scale: bool = True, with_text: bool = True):
        super().__init__()
        self.cfg = cfg
        self.context_length = cfg.context_length
        self.visual = ModifiedResNet(cfg.vision_layers, cfg.embed_dim, heads=cfg.vision_width * 32 // 64,
                                     input_resolution=cfg.image_resolution, width=cfg.vision_width)
        self.with_text = with_text
        self.vocab_size = cfg.vocab_size
        if with_text:  # off when another text tower (e.g. MiniLM) replaces CLIP's
            self.transformer = Transformer(cfg.transformer_width, cfg.transformer_layers, cfg.transformer_heads)
            self.token_embedding = nn.Embedding(cfg.vocab_size, cfg.transformer_width)
            self.positional_embedding = nn.Parameter(torch.empty(cfg.context_length, cfg.transformer_width))
            self.ln_final = nn.LayerNorm(cfg.transformer_width)
            self.text_projection = nn.Parameter(torch.empty(cfg.transformer_width, cfg.embed_dim))
        if with_logit_scale:
            self.logit_scale = nn.Parameter(torch.ones([]) * math.log(1 / 0.07))
        self.register_buffer("attn_mask", torch.full((cfg.context_length, cfg.context_length), float("-inf"))
                             .triu_(1), persistent=False)
        self._init_parameters()

    def _init_parameters(self) -> None:
        ap = self.visual.attnpool
        std = ap.c_proj.in_features ** -0.5
        for lin in (ap.q_proj, ap.k_proj, ap.v_proj, ap.c_proj):
            nn.init.normal_(lin.weight, std=std)
        for stage in (self.visual.layer1, self.visual.layer2, self.visual.layer3, self.visual.layer4):
            for blk in stage:
                nn.init.zeros_(blk.bn3.weight)
        if not self.with_text:
            return
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        w, L = self.transformer.width, self.transformer.layers
        proj_std, attn_std, fc_std = (w ** -0.5) * ((2 * L) ** -0.5), w ** -0.5, (2 * w) ** -0.5
        for blk in self.transformer.resblocks:
            nn.init.normal_(blk.attn.in_proj_weight, std=attn_std)
            nn.init.normal_(blk.attn.out_proj.weight, std=proj_std)
            nn.init.normal_(blk.mlp.c_fc.weight, std=fc_std)
            nn.init.normal_(blk.mlp.c_proj.weight, std=proj_std)
        nn.init.normal_(self.text_projection, std=w ** -0.5)

    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, R, R) CLIP-normalised pixels -> (B, embed_dim) raw features."""
        return self.visual(image)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L) token ids (end-of-text = the largest id in each row) -> (B, embed_dim)."""
        if tokens.shape[1] != self.context_length:
            raise ValueError(f"tokens have length {tokens.shape[1]}, the model's context is {self.context_length}")
        x = self.token_embedding(tokens) + self.positional_embedding
        x = self.transformer(x.permute(1, 0, 2), self.attn_mask).permute(1, 0, 2)
        x = self.ln_final(x)
        return x[torch.arange(x.shape[0], device=x.device), tokens.argmax(dim=-1)] @ self.text_projection


# ----- strict loading ----------------------------------------------------------------------------
def strip_prefixes(sd: Mapping[str, torch.Tensor], prefixes: Sequence[str] = ("module.",)) -> dict:
    out = {}
    for k, v in sd.items():
        for p in prefixes:
            if k.startswith(p):
                k = k[len(p):]
        out[k] = v
    return out


def load_strict(module: nn.Module, sd: Mapping[str, torch.Tensor], source: str) -> None:
    """Load ``sd`` into ``module`` or raise CheckpointError naming missing/unexpected/mis-shaped keys.

    Only BatchNorm ``num_batches_tracked`` counters may be absent (they do not change the function).
    """
    sd = {k: v for k, v in sd.items() if k not in OPENAI_META_KEYS}
    own = module.state_dict()
    missing = [k for k in own if k not in sd and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in sd if k not in own]
    shapes = [f"{k}: file {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}"
              for k in own if k in sd and tuple(sd[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        raise CheckpointError(
            f"{source} does not match the model: {len(missing)} missing (e.g. {missing[:4]}), "
            f"{len(unexpected)} unexpected (e.g. {unexpected[:4]}), {len(shapes)} shape mismatches "
            f"(e.g. {shapes[:2]})")
    module.load_state_dict(sd, strict=False)


def read_torch_file(path: str | Path) -> dict:
    """A state dict from a torch.save file or a TorchScript archive (OpenAI's RN50.pt), CPU."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file {path} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as first:  # OpenAI ships TorchScript archives
        try:
            obj = torch.jit.load(str(path), map_location="cpu").state_dict()
        except Exception:
            raise CheckpointError(f"{path} is neither a torch.save file nor a TorchScript archive: {first}") from first
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a state dict")
    return dict(obj)


def load_openai_clip(path: str | Path, with_logit_scale: bool = True) -> CLIP:
    """Build a CLIP from OpenAI weights at ``path`` (RN50.pt or a state dict), sizes inferred, strict."""
    sd = read_torch_file(path)
    sd = {k: v for k, v in sd.items() if k not in OPENAI_META_KEYS}
    model = CLIP(CLIPConfig.from_state_dict(sd), with_logit_scale=with_logit_scale)
    if not with_logit_scale:
        sd.pop("logit_scale", None)
    load_strict(model, {k: v.float() for k, v in sd.items()}, f"OpenAI CLIP weights {path}")
    return model


# ----- preprocessing -----------------------------------------------------------------------------
def preprocess_images(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """CLIP tensor preprocessing: uint8 (..., H, W, 3) or float (..., 3, H, W) -> normalised (N, 3, R, R).

    Float input with max > 10 is divided by 255 (as DecisionNCE does); then bicubic resize of the
    short side to R, centre crop, CLIP mean/std.
    """
    if images.dtype == torch.uint8:
        x = images.movedim(-1, -3).float() / 255.0
    else:
        x = images.float()
        if x.numel() and x.max() > 10:
            x = x / 255.0
    x = x.reshape(-1, *x.shape[-3:])
    h, w = x.shape[-2:]
    if (h, w) != (resolution, resolution):
        s = resolution / min(h, w)
        nh, nw = max(resolution, round(h * s)), max(resolution, round(w * s))
        x = F.interpolate(x, size=(nh, nw), mode="bicubic", align_corners=False).clamp(0, 1)
        top, left = (nh - resolution) // 2, (nw - resolution) // 2
        x = x[..., top:top + resolution, left:left + resolution]
    mean = torch.tensor(CLIP_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


# ----- tokenizers --------------------------------------------------------------------------------
@functools.lru_cache()
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP reversible byte -> printable-unicode table (no whitespace/control characters)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def _clean(text: str) -> str:
    text = html.unescape(html.unescape(text)).strip()
    return " ".join(text.split()).lower()


def _pack(rows: list[list[int]], context_length: int, eot: int, truncate: bool) -> torch.Tensor:
    out = torch.zeros(len(rows), context_length, dtype=torch.long)
    for i, ids in enumerate(rows):
        if len(ids) > context_length:
            if not truncate:
                raise ValueError(f"text {i} has {len(ids)} tokens, more than the context length {context_length}")
            ids = ids[:context_length]
            ids[-1] = eot
        out[i, :len(ids)] = torch.tensor(ids)
    return out


class ClipBPETokenizer:
    """CLIP's lower-cased byte-level BPE from a merges file the user provides (gzip or plain text).

    Differs from OpenAI's only in skipping ``ftfy`` mojibake repair (not installed here).
    """

    def __init__(self, merges_path: str | Path, max_merges: int = 49152 - 256 - 2):
        import regex
        path = Path(merges_path)
        if not path.is_file():
            raise ConfigError(f"CLIP BPE merges file {path} does not exist (bpe_simple_vocab_16e6.txt.gz "
                              "from the CLIP repository; nothing is downloaded at run time)")
        raw = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
        lines = raw.decode("utf-8").split("\n")[1:max_merges + 1]
        merges = [tuple(m.split()) for m in lines if len(m.split()) == 2]
        vocab = list(bytes_to_unicode().values())
        vocab = vocab + [v + "</w>" for v in vocab] + ["".join(m) for m in merges]
        vocab += ["<|startoftext|>", "<|endoftext|>"]
        self.byte_encoder = bytes_to_unicode()
        self.encoder = {v: i for i, v in enumerate(vocab)}
        self.decoder = {i: v for v, i in self.encoder.items()}
        self.bpe_ranks = {m: i for i, m in enumerate(merges)}
        self.sot, self.eot = self.encoder["<|startoftext|>"], self.encoder["<|endoftext|>"]
        self.vocab_size = len(vocab)
        self.pat = regex.compile(r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
                                 regex.IGNORECASE)
        self._cache: dict[str, str] = {}

    def _bpe(self, token: str) -> str:
        if token in self._cache:
            return self._cache[token]
        word = tuple(token[:-1]) + (token[-1] + "</w>",)
        while len(word) > 1:
            pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
            best = min(pairs, key=lambda p: self.bpe_ranks.get(p, float("inf")))
            if best not in self.bpe_ranks:
                break
            merged, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = tuple(merged)
        out = " ".join(word)
        self._cache[token] = out
        return out

    def encode(self, text: str) -> list[int]:
        ids = []
        for tok in self.pat.findall(_clean(text)):
            tok = "".join(self.byte_encoder[b] for b in tok.encode("utf-8"))
            ids += [self.encoder[t] for t in self._bpe(tok).split(" ")]
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        text = "".join(self.decoder[i] for i in ids if i not in (self.sot, self.eot))
        inv = {v: k for k, v in self.byte_encoder.items()}
        return bytearray(inv[c] for c in text).decode("utf-8", errors="replace").replace("</w>", " ").strip()

    def __call__(self, texts: str | Sequence[str], context_length: int = 77, truncate: bool = False) -> torch.Tensor:
        texts = [texts] if isinstance(texts, str) else list(texts)
        return _pack([[self.sot] + self.encode(t) + [self.eot] for t in texts], context_length, self.eot, truncate)


class HashWordTokenizer:
    """Vocabulary-free tokenizer for the small config: word -> 1 + crc32(word) mod (V - 3).

    Start/end-of-text take the two largest ids, so the text tower's "feature at the largest id"
    rule picks the end token as in CLIP. Collisions are possible but rare for short instructions.
    """

    def __init__(self, vocab_size: int):
        import regex
        if vocab_size < 8:
            raise ConfigError(f"vocab_size {vocab_size} too small for the hash tokenizer")
        self.vocab_size = vocab_size
        self.sot, self.eot = vocab_size - 2, vocab_size - 1
        self.pat = regex.compile(r"[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+")

    def encode(self, text: str) -> list[int]:
        return [1 + zlib.crc32(w.encode()) % (self.vocab_size - 3) for w in self.pat.findall(_clean(text))]

    def __call__(self, texts: str | Sequence[str], context_length: int = 16, truncate: bool = True) -> torch.Tensor:
        texts = [texts] if isinstance(texts, str) else list(texts)
        return _pack([[self.sot] + self.encode(t) + [self.eot] for t in texts], context_length, self.eot, truncate)
