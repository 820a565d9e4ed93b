//! Offline full-text search that works for Chinese.
//!
//! SQLite's FTS5 trigram tokenizer cannot match queries shorter than three
//! characters, and most Chinese words are two (漏水, 纠纷, 垃圾). So text is indexed
//! as two space-separated token streams that FTS5's `unicode61` tokenizer splits on
//! spaces: `uni` holds every CJK character, `bi` every overlapping CJK bigram; Latin
//! letters and digits form whole lowercase words in both. A query of one CJK
//! character matches `uni`; longer runs become a phrase of consecutive bigrams in
//! `bi`, so 管道漏水 matches exactly that sequence and 漏水 matches 楼上管道漏水.

/// Largest query accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 100;

fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{3400}'..='\u{4dbf}'
        | '\u{4e00}'..='\u{9fff}'
        | '\u{f900}'..='\u{faff}'
        | '\u{3040}'..='\u{30ff}'
        | '\u{ac00}'..='\u{d7af}'
        | '\u{20000}'..='\u{2fa1f}')
}

enum Run {
    Cjk(Vec<char>),
    Word(String),
}

fn runs(text: &str) -> Vec<Run> {
    let mut out = Vec::new();
    let mut cjk: Vec<char> = Vec::new();
    let mut word = String::new();
    let flush = |cjk: &mut Vec<char>, word: &mut String, out: &mut Vec<Run>| {
        if !cjk.is_empty() {
            out.push(Run::Cjk(std::mem::take(cjk)));
        }
        if !word.is_empty() {
            out.push(Run::Word(std::mem::take(word)));
        }
    };
    for c in text.chars() {
        if is_cjk(c) {
            if !word.is_empty() {
                flush(&mut cjk, &mut word, &mut out);
            }
            cjk.push(c);
        } else if c.is_alphanumeric() {
            if !cjk.is_empty() {
                flush(&mut cjk, &mut word, &mut out);
            }
            word.extend(c.to_lowercase());
        } else {
            flush(&mut cjk, &mut word, &mut out);
        }
    }
    flush(&mut cjk, &mut word, &mut out);
    out
}

fn bigrams(chars: &[char]) -> impl Iterator<Item = String> + '_ {
    let single = (chars.len() == 1).then(|| chars[0].to_string());
    single
        .into_iter()
        .chain(chars.windows(2).map(|w| w.iter().collect()))
}

/// The `(uni, bi)` columns to index for `text`.
pub fn index_columns(text: &str) -> (String, String) {
    let mut uni = Vec::new();
    let mut bi = Vec::new();
    for run in runs(text) {
        match run {
            Run::Cjk(chars) => {
                uni.extend(chars.iter().map(char::to_string));
                bi.extend(bigrams(&chars));
            }
            Run::Word(w) => {
                uni.push(w.clone());
                bi.push(w);
            }
        }
    }
    (uni.join(" "), bi.join(" "))
}

/// Why a search query was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// Nothing searchable in it.
    #[error("the search query has no letters, digits or characters to search for")]
    Empty,
    /// Too long.
    #[error("the search query is longer than {MAX_QUERY_CHARS} characters")]
    TooLong,
}

/// The FTS5 MATCH expression for a user's query: every run must match.
pub fn match_expression(query: &str) -> Result<String, QueryError> {
    if query.chars().count() > MAX_QUERY_CHARS {
        return Err(QueryError::TooLong);
    }
    // Tokens are letters, digits and CJK only, so they never need escaping inside quotes.
    let terms: Vec<String> = runs(query)
        .into_iter()
        .map(|run| match run {
            Run::Cjk(chars) if chars.len() == 1 => format!("uni : \"{}\"", chars[0]),
            Run::Cjk(chars) => {
                format!("bi : \"{}\"", bigrams(&chars).collect::<Vec<_>>().join(" "))
            }
            Run::Word(w) => format!("bi : \"{w}\""),
        })
        .collect();
    if terms.is_empty() {
        return Err(QueryError::Empty);
    }
    Ok(terms.join(" AND "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_text_is_indexed_as_characters_and_bigrams() {
        let (uni, bi) = index_columns("楼上管道漏水, A栋3单元");
        assert_eq!(uni, "楼 上 管 道 漏 水 a 栋 3 单 元");
        assert_eq!(bi, "楼上 上管 管道 道漏 漏水 a 栋 3 单元");
    }

    #[test]
    fn queries_become_phrases_of_bigrams() {
        assert_eq!(match_expression("漏水").unwrap(), "bi : \"漏水\"");
        assert_eq!(
            match_expression("管道漏水").unwrap(),
            "bi : \"管道 道漏 漏水\""
        );
        assert_eq!(match_expression("水").unwrap(), "uni : \"水\"");
        assert_eq!(
            match_expression("3号楼 \"漏水\"").unwrap(),
            "bi : \"3\" AND bi : \"号楼\" AND bi : \"漏水\""
        );
        assert_eq!(match_expression(" ,\"* "), Err(QueryError::Empty));
        assert_eq!(
            match_expression(&"漏".repeat(101)),
            Err(QueryError::TooLong)
        );
    }
}
