"""The one owner of a tokenizer folder: its metadata, its family, the files it is made of, how it loads.

A *tokenizer folder* is what ``vocab-extend merge`` writes (and what ``init-model`` and ``pretrain`` copy into a
model folder): the family's tokenizer files (``tokenizer.model`` and ``tokenizer.json`` for SentencePiece,
``tokenizer.json`` for byte-level BPE), the Hugging Face settings files and ``vocab_extend.json``.
:meth:`TokenizerFolder.open` reads ``vocab_extend.json`` once and picks the family from it once; a model
folder that vocab-extend did not write opens with :meth:`TokenizerFolder.find` (the family that claims its
files, without metadata).

Invariant: :meth:`TokenizerFolder.copy_into` copies exactly :meth:`TokenizerFolder.files`, byte for byte, so a
model folder carries the merge's own tokenizer, whatever ``save_pretrained`` would have written.

>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> TokenizerFolder.find(folder) is None
True
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from ..errors import VocabExtendError
from ..families import claim_folder, get_family
from ..families.interface import AnyFamily, Base, Extension, HFTokenizer
from ..metadata import METADATA_FILE, MergeMetadata, read_metadata
from ..settings import SETTINGS_FILES, write_hf_files


@dataclass(frozen=True)
class TokenizerFolder:
    """A folder holding a tokenizer of ``family``; ``metadata`` is its ``vocab_extend.json`` (None for a
    folder vocab-extend did not write)."""

    path: Path
    family: AnyFamily
    metadata: MergeMetadata | None = None

    @classmethod
    def open(cls, path: str | Path) -> TokenizerFolder:
        """A folder written by ``vocab-extend merge``: ``vocab_extend.json`` is read here, once."""
        metadata = read_metadata(path)
        return cls(Path(path), get_family(metadata.base_kind), metadata)

    @classmethod
    def find(cls, path: str | Path) -> TokenizerFolder | None:
        """A merge's folder as :meth:`open` reads it; else the family that claims the folder's files; else None."""
        path = Path(path)
        if (path / METADATA_FILE).is_file():
            return cls.open(path)
        source = claim_folder(path, str(path))
        return None if source is None else cls(path, get_family(source.family))

    @property
    def merged(self) -> MergeMetadata:
        """The merge metadata; one sentence for a folder that has none."""
        if self.metadata is None:
            raise VocabExtendError(f"{self.path} has no {METADATA_FILE}: give a folder written by `vocab-extend merge`")
        return self.metadata

    def names(self) -> tuple[str, ...]:
        """The file names a folder of this family is made of, present or not."""
        return (*self.family.folder_files, *SETTINGS_FILES, METADATA_FILE)

    def files(self) -> list[Path]:
        """The files of :meth:`names` that the folder holds."""
        return [self.path / name for name in self.names() if (self.path / name).is_file()]

    def load(self) -> HFTokenizer:
        """The folder's tokenizer, as Hugging Face loads it; a damaged folder is one sentence."""
        try:
            return self.family.load_folder(self.path)
        except (VocabExtendError, KeyboardInterrupt, MemoryError):
            raise
        except Exception as exc:  # a damaged file raises KeyError, TypeError... as well as OSError
            raise VocabExtendError(
                f"could not load the tokenizer in {self.path} ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0][:200] if str(exc) else ''}): write the folder again"
            ) from None

    def load_base(self) -> HFTokenizer:
        """The base tokenizer the merge extended, rebuilt from this folder alone (no network, no base file)."""
        return self.family.base_of_extended(self.path, self.merged.first_new_id)

    def copy_into(self, folder: Path) -> None:
        """Copy :meth:`files` into ``folder`` (a model folder being written), byte for byte."""
        for path in self.files():
            shutil.copyfile(path, Path(folder) / path.name)

    def write(self, base: Base, extension: Extension) -> None:
        """Write a merge here: the family's files, the Hugging Face settings and ``vocab_extend.json``."""
        self.family.write(base, extension, self.path)
        write_hf_files(self.path, base.settings, self.family.derived_settings(base))
        self.merged.write(self.path)
