//! The expression language of recipe `assign` operations: numpy/xarray-like elementwise math
//! on variables, broadcast by dimension name, plus reductions over named dimensions.
//!
//! ```text
//! expr     := or
//! or       := and ('|' and)*
//! and      := cmp ('&' cmp)*
//! cmp      := sum (('==' | '!=' | '<' | '<=' | '>' | '>=') sum)?
//! sum      := product (('+' | '-') product)*
//! product  := unary (('*' | '/') unary)*
//! unary    := ('-' | '~' | 'not') unary | atom
//! atom     := number | 'nan' | 'inf' | 'true' | 'false' | name | name '(' args ')' | '(' expr ')'
//! args     := arg (',' arg)*      arg := expr | 'dim' | ['dim', 'dim']
//! ```
//!
//! Names may contain letters, digits, `_`, `-` and `.` when they do not start with a digit; a
//! variable whose name would be read as arithmetic (`a-b`) is written in backquotes: `` `a-b` ``.

use std::fmt;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A number literal with a fraction or an exponent (`2.5`, `1e3`, `nan`): a Python float.
    Number(f64),
    /// An integer literal (`2`): a Python int, which takes the type of the array it meets (NumPy 2).
    Int(i64),
    /// A boolean literal.
    Bool(bool),
    /// A variable of the dataset.
    Var(String),
    /// A dimension-name argument (`'time'`).
    Dims(Vec<String>),
    /// `-x`.
    Neg(Box<Expr>),
    /// `~x` (or `not x`): logical not of booleans, bitwise not of integers.
    Not(Box<Expr>),
    /// A binary operation.
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// A function call.
    Call(String, Vec<Expr>),
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `&`
    And,
    /// `|`
    Or,
}

impl BinOp {
    /// Whether the result is boolean.
    #[must_use]
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge
        )
    }

    /// How it is written.
    #[must_use]
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::And => "&",
            BinOp::Or => "|",
        }
    }

    /// Whether this is `&` or `|`.
    #[must_use]
    pub fn is_logical(self) -> bool {
        matches!(self, BinOp::And | BinOp::Or)
    }
}

/// Functions taking arrays elementwise: name and number of arguments.
pub const ELEMENTWISE: &[(&str, usize)] = &[
    ("log", 1),
    ("log10", 1),
    ("exp", 1),
    ("sqrt", 1),
    ("abs", 1),
    ("isnan", 1),
    ("notnull", 1),
    ("sin", 1),
    ("cos", 1),
    ("where", 3),
    ("clip", 3),
];

/// Reductions over named dimensions: `name(x, 'dim')` or `name(x, ['d1', 'd2'])`.
pub const REDUCTIONS: &[&str] = &["all", "any", "mean", "std", "min", "max", "count", "sum"];

/// How deep an expression may nest: parentheses, function calls, unary operators and chains of
/// binary operators (`a + b + c` is two levels) all count. Deeper expressions are refused while
/// parsing, so no tree is built that its recursive walks (lowering, printing, dropping) could not
/// bear. Python's own parser stops at 200 nested parentheses.
pub const MAX_DEPTH: usize = 200;

/// A parse error with the byte offset where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Byte offset in the expression text.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at character {}: {}", self.offset + 1, self.message)
    }
}

impl std::error::Error for ParseError {}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Int(i64),
    Name(String),
    Str(String),
    Op(&'static str),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
}

fn tokenize(text: &str) -> Result<Vec<(usize, Tok)>, ParseError> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |offset: usize, message: String| ParseError { offset, message };
    // `text[i..]` always starts at a character boundary: `i` moves by whole characters.
    while let Some(c) = text[i..].chars().next() {
        let start = i;
        if c.is_whitespace() {
            i += c.len_utf8();
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit)) {
            while i < bytes.len()
                && ((bytes[i] as char).is_ascii_digit()
                    || bytes[i] == b'.'
                    || bytes[i] == b'e'
                    || bytes[i] == b'E'
                    || ((bytes[i] == b'-' || bytes[i] == b'+')
                        && (bytes[i - 1] == b'e' || bytes[i - 1] == b'E')))
            {
                i += 1;
            }
            let s = &text[start..i];
            if s.bytes().all(|b| b.is_ascii_digit()) {
                let v = s.parse::<i64>().map_err(|_| {
                    err(
                        start,
                        format!("integer {s} is out of range (the largest is {})", i64::MAX),
                    )
                })?;
                out.push((start, Tok::Int(v)));
                continue;
            }
            let v = s
                .parse::<f64>()
                .map_err(|_| err(start, format!("bad number '{s}'")))?;
            out.push((start, Tok::Num(v)));
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            i += text[i..]
                .find(|ch: char| !(ch.is_alphanumeric() || ch == '_' || ch == '.'))
                .unwrap_or(text.len() - i);
            out.push((start, Tok::Name(text[start..i].to_string())));
            continue;
        }
        if c == '`' || c == '\'' || c == '"' {
            let close = text[i + 1..]
                .find(c)
                .ok_or_else(|| err(start, format!("unclosed {c}")))?;
            let inner = text[i + 1..i + 1 + close].to_string();
            i += close + 2;
            out.push((
                start,
                if c == '`' {
                    Tok::Name(inner)
                } else {
                    Tok::Str(inner)
                },
            ));
            continue;
        }
        let two = text.get(i..i + 2).unwrap_or("");
        let op2 = ["==", "!=", "<=", ">="].into_iter().find(|o| *o == two);
        if let Some(op) = op2 {
            out.push((start, Tok::Op(op)));
            i += 2;
            continue;
        }
        let tok = match c {
            '+' => Tok::Op("+"),
            '-' => Tok::Op("-"),
            '*' => Tok::Op("*"),
            '/' => Tok::Op("/"),
            '<' => Tok::Op("<"),
            '>' => Tok::Op(">"),
            '&' => Tok::Op("&"),
            '|' => Tok::Op("|"),
            '~' => Tok::Op("~"),
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            '[' => Tok::LBracket,
            ']' => Tok::RBracket,
            ',' => Tok::Comma,
            other => return Err(err(start, format!("unexpected character '{other}'"))),
        };
        out.push((start, tok));
        i += 1;
    }
    Ok(out)
}

/// An expression and the depth of its tree.
type Parsed = Result<(Expr, usize), ParseError>;

struct Parser {
    toks: Vec<(usize, Tok)>,
    pos: usize,
    end: usize,
    /// How many parentheses, calls and unary operators enclose the current position.
    nesting: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|(_, t)| t)
    }

    fn offset(&self) -> usize {
        self.toks.get(self.pos).map_or(self.end, |(o, _)| *o)
    }

    fn err<T>(&self, message: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError {
            offset: self.offset(),
            message: message.into(),
        })
    }

    fn too_deep<T>(&self) -> Result<T, ParseError> {
        self.err(format!("expression nested deeper than {MAX_DEPTH} levels"))
    }

    /// `depth` as the depth of a tree, refused beyond [`MAX_DEPTH`].
    fn checked(&self, depth: usize) -> Result<usize, ParseError> {
        if depth > MAX_DEPTH {
            self.too_deep()
        } else {
            Ok(depth)
        }
    }

    /// `f` one level deeper: refused before recursing beyond [`MAX_DEPTH`].
    fn nested(&mut self, f: impl FnOnce(&mut Parser) -> Parsed) -> Parsed {
        if self.nesting >= MAX_DEPTH {
            return self.too_deep();
        }
        self.nesting += 1;
        let out = f(self);
        self.nesting -= 1;
        out
    }

    fn eat_op(&mut self, ops: &[&'static str]) -> Option<&'static str> {
        if let Some(Tok::Op(o)) = self.peek() {
            if let Some(found) = ops.iter().find(|x| *x == o) {
                self.pos += 1;
                return Some(found);
            }
        }
        None
    }

    fn expect(&mut self, tok: &Tok, what: &str) -> Result<(), ParseError> {
        if self.peek() == Some(tok) {
            self.pos += 1;
            Ok(())
        } else {
            self.err(format!("expected {what}"))
        }
    }

    fn binary_level(&mut self, ops: &[&'static str], next: fn(&mut Parser) -> Parsed) -> Parsed {
        let (mut lhs, mut depth) = next(self)?;
        while let Some(op) = self.eat_op(ops) {
            let (rhs, rhs_depth) = next(self)?;
            depth = self.checked(1 + depth.max(rhs_depth))?;
            let op = match op {
                "+" => BinOp::Add,
                "-" => BinOp::Sub,
                "*" => BinOp::Mul,
                "/" => BinOp::Div,
                "==" => BinOp::Eq,
                "!=" => BinOp::Ne,
                "<" => BinOp::Lt,
                "<=" => BinOp::Le,
                ">" => BinOp::Gt,
                ">=" => BinOp::Ge,
                "&" => BinOp::And,
                _ => BinOp::Or,
            };
            lhs = Expr::Binary(op, Box::new(lhs), Box::new(rhs));
        }
        Ok((lhs, depth))
    }

    fn or(&mut self) -> Parsed {
        self.binary_level(&["|"], Parser::and)
    }

    fn and(&mut self) -> Parsed {
        self.binary_level(&["&"], Parser::cmp)
    }

    fn cmp(&mut self) -> Parsed {
        self.binary_level(&["==", "!=", "<=", ">=", "<", ">"], Parser::sum)
    }

    fn sum(&mut self) -> Parsed {
        self.binary_level(&["+", "-"], Parser::product)
    }

    fn product(&mut self) -> Parsed {
        self.binary_level(&["*", "/"], Parser::unary)
    }

    fn unary(&mut self) -> Parsed {
        let wrap: fn(Box<Expr>) -> Expr = if self.eat_op(&["-"]).is_some() {
            Expr::Neg
        } else if self.eat_op(&["~"]).is_some() {
            Expr::Not
        } else if matches!(self.peek(), Some(Tok::Name(n)) if n == "not") {
            self.pos += 1;
            Expr::Not
        } else {
            return self.atom();
        };
        let (x, depth) = self.nested(Parser::unary)?;
        Ok((wrap(Box::new(x)), self.checked(depth + 1)?))
    }

    fn dims_arg(&mut self) -> Parsed {
        match self.peek().cloned() {
            Some(Tok::Str(s)) => {
                self.pos += 1;
                Ok((Expr::Dims(vec![s]), 1))
            }
            Some(Tok::LBracket) => {
                self.pos += 1;
                let mut dims = Vec::new();
                loop {
                    match self.peek().cloned() {
                        Some(Tok::Str(s)) => {
                            self.pos += 1;
                            dims.push(s);
                        }
                        _ => return self.err("expected a quoted dimension name"),
                    }
                    if self.peek() == Some(&Tok::Comma) {
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
                self.expect(&Tok::RBracket, "']'")?;
                Ok((Expr::Dims(dims), 1))
            }
            _ => self.or(),
        }
    }

    fn call(&mut self, name: String) -> Parsed {
        let mut args = Vec::new();
        let mut depth = 0;
        if self.peek() != Some(&Tok::RParen) {
            loop {
                let (arg, d) = self.nested(Parser::dims_arg)?;
                args.push(arg);
                depth = depth.max(d);
                if self.peek() == Some(&Tok::Comma) {
                    self.pos += 1;
                } else {
                    break;
                }
            }
        }
        self.expect(&Tok::RParen, "')' or ','")?;
        Ok((Expr::Call(name, args), self.checked(depth + 1)?))
    }

    fn atom(&mut self) -> Parsed {
        match self.peek().cloned() {
            Some(Tok::Num(v)) => {
                self.pos += 1;
                Ok((Expr::Number(v), 1))
            }
            Some(Tok::Int(v)) => {
                self.pos += 1;
                Ok((Expr::Int(v), 1))
            }
            Some(Tok::LParen) => {
                self.pos += 1;
                let e = self.nested(Parser::or)?;
                self.expect(&Tok::RParen, "')'")?;
                Ok(e)
            }
            Some(Tok::Name(name)) => {
                self.pos += 1;
                if self.peek() == Some(&Tok::LParen) {
                    self.pos += 1;
                    return self.call(name);
                }
                let e = match name.as_str() {
                    "nan" | "NaN" => Expr::Number(f64::NAN),
                    "inf" => Expr::Number(f64::INFINITY),
                    "true" | "True" => Expr::Bool(true),
                    "false" | "False" => Expr::Bool(false),
                    _ => Expr::Var(name),
                };
                Ok((e, 1))
            }
            Some(Tok::Str(_)) => {
                self.err("a quoted name is a dimension; use `backquotes` for variables")
            }
            Some(_) => self.err("expected a value, a variable or a function call"),
            None => self.err("unexpected end of expression"),
        }
    }
}

/// Parse an expression.
///
/// # Errors
/// [`ParseError`] with the position of the problem; an expression nested deeper than
/// [`MAX_DEPTH`] levels is one.
pub fn parse(text: &str) -> Result<Expr, ParseError> {
    let toks = tokenize(text)?;
    let mut p = Parser {
        toks,
        pos: 0,
        end: text.len(),
        nesting: 0,
    };
    let (e, _) = p.or()?;
    if p.pos != p.toks.len() {
        return p.err("unexpected text after the expression");
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var(n: &str) -> Box<Expr> {
        Box::new(Expr::Var(n.into()))
    }

    #[test]
    fn parses_the_tutorial_expressions() {
        assert_eq!(
            parse("land_mask == 0").unwrap(),
            Expr::Binary(BinOp::Eq, var("land_mask"), Box::new(Expr::Int(0)))
        );
        let e = parse("where(~all(isnan(sst), 'time'), land_mask, false)").unwrap();
        let Expr::Call(name, args) = e else { panic!() };
        assert_eq!(name, "where");
        assert_eq!(args.len(), 3);
        assert_eq!(
            args[0],
            Expr::Not(Box::new(Expr::Call(
                "all".into(),
                vec![
                    Expr::Call("isnan".into(), vec![Expr::Var("sst".into())]),
                    Expr::Dims(vec!["time".into()])
                ]
            )))
        );
        assert_eq!(args[2], Expr::Bool(false));
    }

    #[test]
    fn precedence_and_names() {
        let e = parse("a + b * 2 > 1e-3 & `CHL-x` < 5").unwrap();
        let Expr::Binary(BinOp::And, l, r) = e else {
            panic!()
        };
        assert!(matches!(*l, Expr::Binary(BinOp::Gt, _, _)));
        assert_eq!(
            *r,
            Expr::Binary(BinOp::Lt, var("CHL-x"), Box::new(Expr::Int(5)))
        );
        assert_eq!(
            parse("mean(x, ['lat', 'lon'])").unwrap(),
            Expr::Call(
                "mean".into(),
                vec![
                    Expr::Var("x".into()),
                    Expr::Dims(vec!["lat".into(), "lon".into()])
                ]
            )
        );
    }

    #[test]
    fn errors_say_where() {
        assert_eq!(parse("log(y").unwrap_err().offset, 5);
        assert!(parse("a +")
            .unwrap_err()
            .message
            .contains("end of expression"));
        assert!(parse("a $ b").unwrap_err().message.contains("'$'"));
    }

    #[test]
    fn integer_and_float_literals_differ() {
        assert_eq!(parse("2").unwrap(), Expr::Int(2));
        assert_eq!(parse("2.0").unwrap(), Expr::Number(2.0));
        assert_eq!(parse("1e3").unwrap(), Expr::Number(1000.0));
        assert!(parse("99999999999999999999")
            .unwrap_err()
            .message
            .contains("out of range"));
    }

    #[test]
    fn names_may_hold_any_letters() {
        assert_eq!(
            parse("é + 1").unwrap(),
            Expr::Binary(BinOp::Add, var("é"), Box::new(Expr::Int(1)))
        );
        assert!(parse("a · b").unwrap_err().message.contains("'·'"));
    }

    fn depth_error(text: &str) -> ParseError {
        let e = parse(text).unwrap_err();
        assert!(
            e.message
                .contains(&format!("nested deeper than {MAX_DEPTH} levels")),
            "{e}"
        );
        e
    }

    #[test]
    fn deep_expressions_are_refused_not_overflowing() {
        let n = 100_000;
        let parens = format!("{}x{}", "(".repeat(n), ")".repeat(n));
        depth_error(&parens);
        depth_error(&format!("{}x", "-".repeat(n)));
        depth_error(&format!("{}x", "~".repeat(n)));
        depth_error(&format!("{}x", "not ".repeat(n)));
        depth_error(&format!("{}x{}", "abs(".repeat(n), ")".repeat(n)));
        depth_error(&vec!["a"; n].join(" + "));
        depth_error(&vec!["a"; n].join(" * "));
        depth_error(&vec!["a"; n].join(" & "));
        depth_error(&format!("a{}", " < a".repeat(n)));
        // Unclosed, the same.
        depth_error(&"(".repeat(n));
        // Where the limit is: MAX_DEPTH levels parse, one more does not.
        parse(&format!("{}x", "-".repeat(MAX_DEPTH - 1))).unwrap();
        depth_error(&format!("{}x", "-".repeat(MAX_DEPTH)));
        parse(&vec!["a"; MAX_DEPTH].join(" + ")).unwrap();
        depth_error(&vec!["a"; MAX_DEPTH + 1].join(" + "));
        // Parentheses alone add no level to the tree but do to the parser's recursion.
        parse(&format!(
            "{}x{}",
            "(".repeat(MAX_DEPTH),
            ")".repeat(MAX_DEPTH)
        ))
        .unwrap();
        depth_error(&format!(
            "{}x{}",
            "(".repeat(MAX_DEPTH + 1),
            ")".repeat(MAX_DEPTH + 1)
        ));
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::{parse, MAX_DEPTH};

        /// One level of nesting around `inner`.
        fn wrap(kind: u8, inner: &str) -> String {
            match kind % 6 {
                0 => format!("({inner})"),
                1 => format!("-{inner}"),
                2 => format!("~{inner}"),
                3 => format!("abs({inner})"),
                4 => format!("{inner} + a"),
                _ => format!("where({inner}, 1, 2.5)"),
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn any_text_parses_or_is_refused(text in any::<String>()) {
                let _ = parse(&text);
            }

            #[test]
            fn expression_like_text_parses_or_is_refused(
                text in "[a-z0-9 ().,+*/<>=!&|~'`\"\\[\\]eE-]{0,300}"
            ) {
                if let Err(e) = parse(&text) {
                    prop_assert!(e.offset <= text.len());
                }
            }

            #[test]
            fn nesting_parses_or_is_refused_at_the_limit(
                kinds in proptest::collection::vec(any::<u8>(), 0..2000),
                unclosed in any::<bool>(),
            ) {
                let mut text = String::from("x");
                for k in &kinds {
                    text = wrap(*k, &text);
                }
                if unclosed {
                    text.pop();
                }
                // Each wrapper adds at most one level; fewer than the limit always parse.
                match parse(&text) {
                    Ok(_) => prop_assert!(!unclosed),
                    Err(e) => prop_assert!(
                        unclosed
                            || (kinds.len() >= MAX_DEPTH
                                && e.message.contains(&format!("deeper than {MAX_DEPTH}"))),
                        "{e}"
                    ),
                }
            }
        }
    }
}
