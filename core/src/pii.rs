//! Personal information that has a shape of its own: the 18-digit resident ID number
//! (GB 11643) and phone numbers, validated on the way in and masked on the way out.
//!
//! Both types print masked through `Debug` and `Display`, so a value that reaches a
//! log line, an error or a panic message shows `3301**********1234`, not the number.
//! The full value is only behind [`ResidentId::full`] and [`Phone::full`], which a
//! caller asks for on purpose (a detail view for a role that may see it, the
//! document itself). Errors say what is wrong with a number, never the number.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate};

/// Why a resident ID number was refused. The messages never repeat the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdNumberError {
    /// Not 18 characters.
    #[error("an ID number has 18 characters; this one has {0}")]
    Length(usize),
    /// A character other than a digit, or an X anywhere but last.
    #[error("an ID number is 17 digits and a last digit or X")]
    Characters,
    /// Characters 7–14 are not a real date between 1900 and 2100.
    #[error("the birth date in the ID number is not a real date")]
    BirthDate,
    /// The last character does not match the first 17 (GB 11643 check digit).
    #[error("the ID number's check digit does not match; a digit is probably mistyped")]
    CheckDigit,
}

impl IdNumberError {
    /// The same, in Chinese: what a row-by-row import report or a form shows.
    pub fn zh(&self) -> String {
        match self {
            IdNumberError::Length(n) => format!("身份证号应为 18 位，此处为 {n} 位"),
            IdNumberError::Characters => "身份证号应为 17 位数字加 1 位数字或 X".to_owned(),
            IdNumberError::BirthDate => "身份证号中的出生日期不是有效日期".to_owned(),
            IdNumberError::CheckDigit => "身份证号校验位不符，可能有数字录入错误".to_owned(),
        }
    }
}

/// Sex as the ID number records it (the 17th digit: odd male, even female).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sex {
    /// 男
    Male,
    /// 女
    Female,
}

/// A resident ID number whose check digit, birth date and form are valid.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ResidentId {
    number: String,
    born: NaiveDate,
}

const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK: [u8; 11] = *b"10X98765432";

/// The GB 11643 check digit (`0`–`9` or `X`) of an ID number's first 17 digits;
/// `None` unless they are 17 ASCII digits.
pub fn check_digit(first17: &str) -> Option<char> {
    let bytes = first17.as_bytes();
    if bytes.len() != 17 || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sum: u32 = bytes
        .iter()
        .zip(WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    Some(char::from(CHECK[(sum % 11) as usize]))
}

impl FromStr for ResidentId {
    type Err = IdNumberError;

    /// Accepts surrounding spaces and a lowercase x, as people type them.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let n = s.chars().count();
        if n != 18 {
            return Err(IdNumberError::Length(n));
        }
        let bytes = s.as_bytes();
        if !bytes[..17].iter().all(u8::is_ascii_digit) {
            return Err(IdNumberError::Characters);
        }
        let last = bytes[17].to_ascii_uppercase();
        if !(last.is_ascii_digit() || last == b'X') {
            return Err(IdNumberError::Characters);
        }
        let digits = |range: std::ops::Range<usize>| -> u32 {
            bytes[range]
                .iter()
                .fold(0, |acc, b| acc * 10 + u32::from(b - b'0'))
        };
        let (year, month, day) = (digits(6..10), digits(10..12), digits(12..14));
        let born = NaiveDate::from_ymd_opt(year as i32, month, day)
            .filter(|_| (1900..=2100).contains(&year))
            .ok_or(IdNumberError::BirthDate)?;
        if check_digit(&s[..17]) != Some(char::from(last)) {
            return Err(IdNumberError::CheckDigit);
        }
        let mut number = s[..17].to_owned();
        number.push(char::from(last));
        Ok(ResidentId { number, born })
    }
}

impl ResidentId {
    /// The whole number: only for a detail view to a role allowed to see it, and for
    /// the document that stores it.
    pub fn full(&self) -> &str {
        &self.number
    }

    /// `3301**********1234`: the first four and the last four characters.
    pub fn masked(&self) -> String {
        format!(
            "{}{}{}",
            &self.number[..4],
            "*".repeat(10),
            &self.number[14..]
        )
    }

    /// The last `n` characters (at most 6): what a search by "the last digits" matches.
    pub fn suffix(&self, n: usize) -> &str {
        &self.number[18 - n.min(6)..]
    }

    /// The birth date the number records.
    pub fn birth_date(&self) -> NaiveDate {
        self.born
    }

    /// Age in whole years on `day`.
    pub fn age_on(&self, day: NaiveDate) -> u32 {
        let born = self.birth_date();
        let years = day.year() - born.year();
        let before_birthday = (day.month(), day.day()) < (born.month(), born.day());
        (years - i32::from(before_birthday)).max(0) as u32
    }

    /// The sex the number records.
    pub fn sex(&self) -> Sex {
        if (self.number.as_bytes()[16] - b'0') % 2 == 1 {
            Sex::Male
        } else {
            Sex::Female
        }
    }
}

impl fmt::Debug for ResidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResidentId({})", self.masked())
    }
}

impl fmt::Display for ResidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

/// Why a phone number was refused. The messages never repeat the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    /// Neither an 11-digit mobile number nor a landline with its area code.
    #[error("a phone number is an 11-digit mobile number (1xxxxxxxxxx) or a landline with its area code (0xxx-xxxxxxx)")]
    Form,
}

impl PhoneError {
    /// The same, in Chinese.
    pub fn zh(&self) -> String {
        "电话号码应为 11 位手机号，或带区号的固定电话（如 0571-88888888）".to_owned()
    }
}

/// A mainland phone number: an 11-digit mobile number, or a landline with its area
/// code, kept as digits (a landline as `area-number`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Phone(String);

impl FromStr for Phone {
    type Err = PhoneError;

    /// Accepts the spaces, dashes and `+86` prefix people write.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let s = s
            .strip_prefix("+86")
            .or_else(|| s.strip_prefix("0086"))
            .unwrap_or(s);
        if s.len() > 24
            || !s
                .chars()
                .all(|c| c.is_ascii_digit() || c == ' ' || c == '-')
        {
            return Err(PhoneError::Form);
        }
        let digits: String = s.chars().filter(char::is_ascii_digit).collect();
        let mobile = digits.len() == 11
            && digits.starts_with('1')
            && matches!(digits.as_bytes()[1], b'3'..=b'9');
        if mobile {
            return Ok(Phone(digits));
        }
        // A landline: 0 + a 2- or 3-digit area code, then 7 or 8 digits. Written
        // with a dash the split is known; without one, Beijing, Shanghai, Tianjin,
        // Chongqing and the 02x codes have three-digit codes (010, 021 … 029).
        let (area, number) = match s.split_once('-') {
            Some((a, n)) => (
                a.chars().filter(char::is_ascii_digit).collect::<String>(),
                n.chars().filter(char::is_ascii_digit).collect::<String>(),
            ),
            None if digits.starts_with("01") || digits.starts_with("02") => (
                digits[..3.min(digits.len())].to_owned(),
                digits[3.min(digits.len())..].to_owned(),
            ),
            None => (
                digits[..4.min(digits.len())].to_owned(),
                digits[4.min(digits.len())..].to_owned(),
            ),
        };
        let landline = area.starts_with('0')
            && (3..=4).contains(&area.len())
            && (7..=8).contains(&number.len())
            && !number.starts_with('0');
        if landline {
            Ok(Phone(format!("{area}-{number}")))
        } else {
            Err(PhoneError::Form)
        }
    }
}

impl Phone {
    /// The whole number: only for a detail view to a role allowed to see it (and
    /// the button that dials it), and for the document that stores it.
    pub fn full(&self) -> &str {
        &self.0
    }

    /// `138****5678` for a mobile, `0571-****8888` for a landline.
    pub fn masked(&self) -> String {
        match self.0.split_once('-') {
            Some((area, number)) => {
                let keep = number.len() - 4;
                format!("{area}-{}{}", "*".repeat(keep), &number[keep..])
            }
            None => format!("{}****{}", &self.0[..3], &self.0[7..]),
        }
    }
}

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Phone({})", self.masked())
    }
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GB 11643's worked example and two more, their check digits computed by hand.
    const VALID: [&str; 3] = [
        "11010519491231002X",
        "440524198001010013",
        "330106199001011256",
    ];

    #[test]
    fn the_check_digit_is_computed_as_the_standard_says() {
        for id in VALID {
            let parsed: ResidentId = id.parse().expect(id);
            assert_eq!(parsed.full(), id);
        }
        // Every other last character is refused, each as a check-digit error.
        for id in VALID {
            for other in "0123456789X".chars().filter(|c| !id.ends_with(*c)) {
                let wrong = format!("{}{other}", &id[..17]);
                assert_eq!(
                    wrong.parse::<ResidentId>(),
                    Err(IdNumberError::CheckDigit),
                    "{other}"
                );
            }
        }
        // One mistyped digit in the body changes the check.
        assert_eq!(
            "11010519491231003X".parse::<ResidentId>(),
            Err(IdNumberError::CheckDigit)
        );
    }

    #[test]
    fn typing_habits_are_forgiven_and_bad_forms_named() {
        let id: ResidentId = " 11010519491231002x ".parse().expect("lowercase x, spaces");
        assert_eq!(id.full(), "11010519491231002X");
        assert_eq!(
            "1101051949123100".parse::<ResidentId>(),
            Err(IdNumberError::Length(16))
        );
        assert_eq!(
            "11010519491231002X1".parse::<ResidentId>(),
            Err(IdNumberError::Length(19))
        );
        assert_eq!(
            "1101051949123X002X".parse::<ResidentId>(),
            Err(IdNumberError::Characters)
        );
        assert_eq!(
            "11010519491231002Y".parse::<ResidentId>(),
            Err(IdNumberError::Characters)
        );
        // Eighteen characters, not eighteen bytes.
        assert_eq!(
            "１１０１０５１９４９１２３１００２X".parse::<ResidentId>(),
            Err(IdNumberError::Characters)
        );
        // February 30th, and a year outside 1900–2100.
        assert_eq!(
            "110105194902300020".parse::<ResidentId>(),
            Err(IdNumberError::BirthDate)
        );
        assert_eq!(
            "110105189912310020".parse::<ResidentId>(),
            Err(IdNumberError::BirthDate)
        );
    }

    #[test]
    fn birth_date_sex_and_age_come_from_the_number() {
        let id: ResidentId = "11010519491231002X".parse().expect("valid");
        assert_eq!(
            id.birth_date(),
            NaiveDate::from_ymd_opt(1949, 12, 31).expect("a date")
        );
        assert_eq!(id.sex(), Sex::Female, "17th digit 2 is even");
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("a date");
        assert_eq!(id.age_on(day(2026, 12, 30)), 76);
        assert_eq!(id.age_on(day(2026, 12, 31)), 77);
        let man: ResidentId = "440524198001010013".parse().expect("valid");
        assert_eq!(man.sex(), Sex::Male);
    }

    #[test]
    fn an_id_number_never_prints_in_full() {
        let id: ResidentId = "330106199001011256".parse().expect("valid");
        assert_eq!(id.masked(), "3301**********1256");
        assert_eq!(id.to_string(), "3301**********1256");
        assert_eq!(format!("{id:?}"), "ResidentId(3301**********1256)");
        assert_eq!(
            format!("{:?}", Some(&id)),
            "Some(ResidentId(3301**********1256))"
        );
        assert_eq!(id.suffix(4), "1256");
        assert_eq!(id.suffix(6), "011256");
        assert_eq!(id.suffix(9), "011256", "never more than six");
        // No error message carries a digit of what was typed.
        for bad in [
            "33010619900101125",
            "330106199001011257",
            "330106199013011256",
        ] {
            let e = bad.parse::<ResidentId>().expect_err(bad);
            let texts = [e.to_string(), e.zh()];
            for text in texts {
                assert!(!text.contains("3301"), "{text}");
                assert!(!text.contains("1256"), "{text}");
            }
        }
    }

    #[test]
    fn phones_are_mobiles_or_landlines_with_an_area_code() {
        let cases = [
            ("13812345678", "13812345678", "138****5678"),
            ("+86 138 1234 5678", "13812345678", "138****5678"),
            ("138-1234-5678", "13812345678", "138****5678"),
            ("0571-88886666", "0571-88886666", "0571-****6666"),
            ("010-6655443", "010-6655443", "010-***5443"),
            ("02166554433", "021-66554433", "021-****4433"),
            ("057188886666", "0571-88886666", "0571-****6666"),
        ];
        for (typed, full, masked) in cases {
            let phone: Phone = typed.parse().expect(typed);
            assert_eq!(phone.full(), full, "{typed}");
            assert_eq!(phone.masked(), masked, "{typed}");
            assert_eq!(format!("{phone:?}"), format!("Phone({masked})"));
        }
        for bad in [
            "",
            "12812345678",
            "1381234567",
            "138123456789",
            "88886666",
            "0571-0888666",
            "110",
            "138 1234 567a",
            "电话13812345678",
        ] {
            assert_eq!(bad.parse::<Phone>(), Err(PhoneError::Form), "{bad}");
        }
        assert!(!PhoneError::Form.zh().is_empty());
    }
}
