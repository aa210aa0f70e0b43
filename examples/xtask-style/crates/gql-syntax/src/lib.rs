//! The token and node kinds of a small GraphQL parser. `SyntaxKind` is generated from
//! `tasks/codegen/kinds_src.rs` by `cargo task codegen`; CI runs `cargo task codegen --check`.

mod generated {
    pub mod syntax_kind;
}

pub use generated::syntax_kind::SyntaxKind;

#[cfg(test)]
mod tests {
    use super::SyntaxKind;

    #[test]
    fn keywords_and_punctuation_are_recognised() {
        assert_eq!(SyntaxKind::from_keyword("query"), Some(SyntaxKind::QUERY_KW));
        assert!(SyntaxKind::QUERY_KW.is_keyword());
        assert_eq!(SyntaxKind::from_char('{'), Some(SyntaxKind::L_CURLY));
        assert!(SyntaxKind::L_CURLY.is_punct());
        assert_eq!(SyntaxKind::from_keyword("banana"), None);
    }
}
