//! This is a generated file, please do not edit manually. Change
//! tasks/codegen/kinds_src.rs and run `cargo task codegen`.

#![allow(bad_style, missing_docs, unreachable_pub)]
/// The kind of a token or of a node of the syntax tree.
#[non_exhaustive]
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
#[repr(u16)]
pub enum SyntaxKind {
    #[doc(hidden)]
    TOMBSTONE,
    #[doc(hidden)]
    EOF,
    // punctuation
    AMP,
    AT,
    BANG,
    DOLLAR,
    EQ,
    COLON,
    SPREAD,
    PIPE,
    L_CURLY,
    R_CURLY,
    L_BRACK,
    R_BRACK,
    L_PAREN,
    R_PAREN,
    // keywords
    QUERY_KW,
    MUTATION_KW,
    SUBSCRIPTION_KW,
    FRAGMENT_KW,
    ON_KW,
    TYPE_KW,
    INTERFACE_KW,
    UNION_KW,
    ENUM_KW,
    INPUT_KW,
    SCALAR_KW,
    SCHEMA_KW,
    DIRECTIVE_KW,
    EXTEND_KW,
    IMPLEMENTS_KW,
    TRUE_KW,
    FALSE_KW,
    NULL_KW,
    // literals
    INT_VALUE,
    FLOAT_VALUE,
    STRING_VALUE,
    // tokens
    ERROR,
    IDENT,
    WHITESPACE,
    COMMENT,
    COMMA,
    // nodes
    DOCUMENT,
    OPERATION_DEFINITION,
    SELECTION_SET,
    FIELD,
    ALIAS,
    ARGUMENTS,
    ARGUMENT,
    FRAGMENT_SPREAD,
    FRAGMENT_DEFINITION,
    VARIABLE_DEFINITIONS,
    VARIABLE_DEFINITION,
    VARIABLE,
    NAMED_TYPE,
    LIST_TYPE,
    NON_NULL_TYPE,
    DIRECTIVES,
    DIRECTIVE,
    #[doc(hidden)]
    __LAST,
}

use self::SyntaxKind::*;

impl SyntaxKind {
    pub fn is_punct(self) -> bool {
        matches!(
            self,
              AMP
            | AT
            | BANG
            | DOLLAR
            | EQ
            | COLON
            | SPREAD
            | PIPE
            | L_CURLY
            | R_CURLY
            | L_BRACK
            | R_BRACK
            | L_PAREN
            | R_PAREN
        )
    }

    pub fn is_keyword(self) -> bool {
        matches!(
            self,
              QUERY_KW
            | MUTATION_KW
            | SUBSCRIPTION_KW
            | FRAGMENT_KW
            | ON_KW
            | TYPE_KW
            | INTERFACE_KW
            | UNION_KW
            | ENUM_KW
            | INPUT_KW
            | SCALAR_KW
            | SCHEMA_KW
            | DIRECTIVE_KW
            | EXTEND_KW
            | IMPLEMENTS_KW
            | TRUE_KW
            | FALSE_KW
            | NULL_KW
        )
    }

    pub fn is_literal(self) -> bool {
        matches!(
            self,
              INT_VALUE
            | FLOAT_VALUE
            | STRING_VALUE
        )
    }

    pub fn from_keyword(ident: &str) -> Option<SyntaxKind> {
        let kw = match ident {
            "query" => QUERY_KW,
            "mutation" => MUTATION_KW,
            "subscription" => SUBSCRIPTION_KW,
            "fragment" => FRAGMENT_KW,
            "on" => ON_KW,
            "type" => TYPE_KW,
            "interface" => INTERFACE_KW,
            "union" => UNION_KW,
            "enum" => ENUM_KW,
            "input" => INPUT_KW,
            "scalar" => SCALAR_KW,
            "schema" => SCHEMA_KW,
            "directive" => DIRECTIVE_KW,
            "extend" => EXTEND_KW,
            "implements" => IMPLEMENTS_KW,
            "true" => TRUE_KW,
            "false" => FALSE_KW,
            "null" => NULL_KW,
            _ => return None,
        };
        Some(kw)
    }

    pub fn from_char(c: char) -> Option<SyntaxKind> {
        let tok = match c {
            '&' => AMP,
            '@' => AT,
            '!' => BANG,
            '$' => DOLLAR,
            '=' => EQ,
            ':' => COLON,
            '|' => PIPE,
            '{' => L_CURLY,
            '}' => R_CURLY,
            '[' => L_BRACK,
            ']' => R_BRACK,
            '(' => L_PAREN,
            ')' => R_PAREN,
            _ => return None,
        };
        Some(tok)
    }
}
