//! US states with population weights, time zones and a few cities each, so rows carry a
//! plausible city, state, ZIP code and UTC offset.

/// One state (or DC, or a territory) of the panel's geography.
pub(crate) struct StateInfo {
    pub code: &'static str,
    /// Population in millions: home states and travel are drawn in proportion to it.
    pub population: f64,
    /// Standard-time offset from UTC in hours.
    pub utc_offset: i8,
    /// Whether the state observes daylight saving time.
    pub dst: bool,
    /// Cities with a base ZIP code; the first is the largest.
    pub cities: &'static [(&'static str, u32)],
}

const fn s(
    code: &'static str,
    population: f64,
    utc_offset: i8,
    dst: bool,
    cities: &'static [(&'static str, u32)],
) -> StateInfo {
    StateInfo {
        code,
        population,
        utc_offset,
        dst,
        cities,
    }
}

/// Index of the "no location" region in per-region tables.
pub(crate) const NO_REGION: u8 = STATES.len() as u8;

#[rustfmt::skip]
pub(crate) static STATES: [StateInfo; 56] = [
    s("AL", 5.0, -6, true, &[("BIRMINGHAM", 35203), ("MONTGOMERY", 36104), ("HUNTSVILLE", 35801), ("MOBILE", 36602)]),
    s("AK", 0.73, -9, true, &[("ANCHORAGE", 99501), ("FAIRBANKS", 99701), ("JUNEAU", 99801)]),
    s("AZ", 7.2, -7, false, &[("PHOENIX", 85004), ("TUCSON", 85701), ("MESA", 85201), ("SCOTTSDALE", 85251)]),
    s("AR", 3.0, -6, true, &[("LITTLE ROCK", 72201), ("FAYETTEVILLE", 72701), ("FORT SMITH", 72901)]),
    s("CA", 39.5, -8, true, &[("LOS ANGELES", 90012), ("SAN FRANCISCO", 94103), ("SAN DIEGO", 92101), ("SAN JOSE", 95113), ("SACRAMENTO", 95814), ("FRESNO", 93721), ("OAKLAND", 94612), ("SAN LUIS OBISPO", 93401)]),
    s("CO", 5.8, -7, true, &[("DENVER", 80202), ("COLORADO SPRINGS", 80903), ("FORT COLLINS", 80521), ("BOULDER", 80302)]),
    s("CT", 3.6, -5, true, &[("HARTFORD", 6103), ("NEW HAVEN", 6510), ("STAMFORD", 6901), ("BRIDGEPORT", 6604)]),
    s("DE", 1.0, -5, true, &[("WILMINGTON", 19801), ("DOVER", 19901), ("NEWARK", 19711)]),
    s("FL", 21.5, -5, true, &[("MIAMI", 33130), ("ORLANDO", 32801), ("TAMPA", 33602), ("JACKSONVILLE", 32202), ("FORT LAUDERDALE", 33301)]),
    s("GA", 10.7, -5, true, &[("ATLANTA", 30303), ("SAVANNAH", 31401), ("AUGUSTA", 30901), ("ATHENS", 30601)]),
    s("HI", 1.45, -10, false, &[("HONOLULU", 96813), ("HILO", 96720), ("KAILUA", 96734)]),
    s("ID", 1.8, -7, true, &[("BOISE", 83702), ("MERIDIAN", 83642), ("IDAHO FALLS", 83402)]),
    s("IL", 12.8, -6, true, &[("CHICAGO", 60601), ("NAPERVILLE", 60540), ("SPRINGFIELD", 62701), ("PEORIA", 61602)]),
    s("IN", 6.8, -5, true, &[("INDIANAPOLIS", 46204), ("FORT WAYNE", 46802), ("BLOOMINGTON", 47401)]),
    s("IA", 3.2, -6, true, &[("DES MOINES", 50309), ("CEDAR RAPIDS", 52401), ("IOWA CITY", 52240)]),
    s("KS", 2.9, -6, true, &[("WICHITA", 67202), ("OVERLAND PARK", 66204), ("TOPEKA", 66603)]),
    s("KY", 4.5, -5, true, &[("LOUISVILLE", 40202), ("LEXINGTON", 40507), ("BOWLING GREEN", 42101)]),
    s("LA", 4.7, -6, true, &[("NEW ORLEANS", 70112), ("BATON ROUGE", 70801), ("SHREVEPORT", 71101)]),
    s("ME", 1.36, -5, true, &[("PORTLAND", 4101), ("BANGOR", 4401), ("LEWISTON", 4240)]),
    s("MD", 6.2, -5, true, &[("BALTIMORE", 21202), ("ROCKVILLE", 20850), ("ANNAPOLIS", 21401), ("FREDERICK", 21701)]),
    s("MA", 7.0, -5, true, &[("BOSTON", 2108), ("CAMBRIDGE", 2139), ("WORCESTER", 1608), ("SPRINGFIELD", 1103)]),
    s("MI", 10.1, -5, true, &[("DETROIT", 48226), ("GRAND RAPIDS", 49503), ("ANN ARBOR", 48104), ("LANSING", 48933)]),
    s("MN", 5.7, -6, true, &[("MINNEAPOLIS", 55401), ("SAINT PAUL", 55101), ("ROCHESTER", 55901), ("DULUTH", 55802)]),
    s("MS", 2.96, -6, true, &[("JACKSON", 39201), ("GULFPORT", 39501), ("HATTIESBURG", 39401)]),
    s("MO", 6.15, -6, true, &[("KANSAS CITY", 64105), ("SAINT LOUIS", 63101), ("SPRINGFIELD", 65806), ("COLUMBIA", 65201)]),
    s("MT", 1.08, -7, true, &[("BILLINGS", 59101), ("MISSOULA", 59802), ("BOZEMAN", 59715)]),
    s("NE", 1.96, -6, true, &[("OMAHA", 68102), ("LINCOLN", 68508), ("GRAND ISLAND", 68801)]),
    s("NV", 3.1, -8, true, &[("LAS VEGAS", 89101), ("RENO", 89501), ("HENDERSON", 89002)]),
    s("NH", 1.38, -5, true, &[("MANCHESTER", 3101), ("NASHUA", 3060), ("CONCORD", 3301)]),
    s("NJ", 9.3, -5, true, &[("NEWARK", 7102), ("JERSEY CITY", 7302), ("PRINCETON", 8540), ("HOBOKEN", 7030)]),
    s("NM", 2.1, -7, true, &[("ALBUQUERQUE", 87102), ("SANTA FE", 87501), ("LAS CRUCES", 88001)]),
    s("NY", 20.2, -5, true, &[("NEW YORK", 10001), ("BROOKLYN", 11201), ("BUFFALO", 14202), ("ROCHESTER", 14604), ("ALBANY", 12207), ("ROCKVILLE CENTRE", 11570)]),
    s("NC", 10.4, -5, true, &[("CHARLOTTE", 28202), ("RALEIGH", 27601), ("DURHAM", 27701), ("ASHEVILLE", 28801)]),
    s("ND", 0.78, -6, true, &[("FARGO", 58102), ("BISMARCK", 58501), ("GRAND FORKS", 58201)]),
    s("OH", 11.8, -5, true, &[("COLUMBUS", 43215), ("CLEVELAND", 44113), ("CINCINNATI", 45202), ("TOLEDO", 43604)]),
    s("OK", 3.96, -6, true, &[("OKLAHOMA CITY", 73102), ("TULSA", 74103), ("NORMAN", 73069)]),
    s("OR", 4.24, -8, true, &[("PORTLAND", 97204), ("EUGENE", 97401), ("SALEM", 97301), ("BEND", 97701)]),
    s("PA", 13.0, -5, true, &[("PHILADELPHIA", 19103), ("PITTSBURGH", 15222), ("ALLENTOWN", 18101), ("HARRISBURG", 17101)]),
    s("RI", 1.1, -5, true, &[("PROVIDENCE", 2903), ("WARWICK", 2886), ("NEWPORT", 2840)]),
    s("SC", 5.1, -5, true, &[("CHARLESTON", 29401), ("COLUMBIA", 29201), ("GREENVILLE", 29601), ("MYRTLE BEACH", 29577)]),
    s("SD", 0.89, -6, true, &[("SIOUX FALLS", 57104), ("RAPID CITY", 57701), ("PIERRE", 57501)]),
    s("TN", 6.9, -6, true, &[("NASHVILLE", 37203), ("MEMPHIS", 38103), ("KNOXVILLE", 37902), ("CHATTANOOGA", 37402)]),
    s("TX", 29.1, -6, true, &[("HOUSTON", 77002), ("DALLAS", 75201), ("AUSTIN", 78701), ("SAN ANTONIO", 78205), ("FORT WORTH", 76102), ("EL PASO", 79901)]),
    s("UT", 3.3, -7, true, &[("SALT LAKE CITY", 84101), ("PROVO", 84601), ("OGDEN", 84401)]),
    s("VT", 0.64, -5, true, &[("BURLINGTON", 5401), ("MONTPELIER", 5602), ("RUTLAND", 5701)]),
    s("VA", 8.6, -5, true, &[("VIRGINIA BEACH", 23451), ("RICHMOND", 23219), ("ARLINGTON", 22201), ("NORFOLK", 23510)]),
    s("WA", 7.7, -8, true, &[("SEATTLE", 98101), ("SPOKANE", 99201), ("TACOMA", 98402), ("BELLEVUE", 98004)]),
    s("WV", 1.79, -5, true, &[("CHARLESTON", 25301), ("MORGANTOWN", 26505), ("HUNTINGTON", 25701)]),
    s("WI", 5.9, -6, true, &[("MILWAUKEE", 53202), ("MADISON", 53703), ("GREEN BAY", 54301)]),
    s("WY", 0.58, -7, true, &[("CHEYENNE", 82001), ("CASPER", 82601), ("JACKSON", 83001)]),
    s("DC", 0.69, -5, true, &[("WASHINGTON", 20001)]),
    s("PR", 3.2, -4, false, &[("SAN JUAN", 901), ("PONCE", 716), ("BAYAMON", 956)]),
    s("GU", 0.17, 10, false, &[("HAGATNA", 96910), ("TAMUNING", 96913)]),
    s("VI", 0.09, -4, false, &[("CHARLOTTE AMALIE", 802), ("CHRISTIANSTED", 820)]),
    s("AS", 0.05, -11, false, &[("PAGO PAGO", 96799)]),
    s("MP", 0.05, 10, false, &[("SAIPAN", 96950)]),
];

/// States whose names are popular with travellers get extra weight as trip destinations.
pub(crate) fn travel_weight(index: usize) -> f64 {
    let state = &STATES[index];
    let boost = match state.code {
        "FL" | "NV" | "HI" | "NY" | "CA" => 2.0,
        "CO" | "AZ" | "TN" | "LA" | "DC" => 1.5,
        _ => 1.0,
    };
    state.population * boost
}

/// The text of a region for the truth file: the state code, or `XX` when the row had none.
pub(crate) fn region_code(region: u8) -> &'static str {
    STATES
        .get(usize::from(region))
        .map_or("XX", |state| state.code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use altdata_domain::{Region, US_STATES};

    #[test]
    fn every_state_is_a_known_region_exactly_once() {
        for state in &STATES {
            assert!(Region::parse(state.code).is_some(), "{}", state.code);
            assert!(!state.cities.is_empty());
        }
        for code in US_STATES {
            assert_eq!(
                STATES.iter().filter(|s| s.code == code).count(),
                1,
                "{code}"
            );
        }
    }
}
