use vkyc::domain::geo::{inside_india, valid_position};

const INSIDE: &[(&str, f64, f64)] = &[
    ("New Delhi", 28.6139, 77.2090),
    ("Mumbai", 19.0760, 72.8777),
    ("Chennai", 13.0827, 80.2707),
    ("Kolkata", 22.5726, 88.3639),
    ("Bengaluru", 12.9716, 77.5946),
    ("Srinagar", 34.0837, 74.7973),
    ("Leh", 34.1526, 77.5771),
    ("Gilgit", 35.92, 74.31),
    ("Muzaffarabad", 34.37, 73.47),
    ("Aksai Chin", 35.2, 79.2),
    ("Siachen", 35.4, 77.1),
    ("Shaksgam", 36.1, 76.5),
    ("Tawang", 27.59, 91.86),
    ("Port Blair", 11.6234, 92.7265),
    ("Kavaratti", 10.57, 72.64),
    ("Kanyakumari", 8.0883, 77.5385),
];

const OUTSIDE: &[(&str, f64, f64)] = &[
    ("Lahore", 31.5204, 74.3587),
    ("Karachi", 24.8607, 67.0011),
    ("Islamabad", 33.6844, 73.0479),
    ("Dhaka", 23.8103, 90.4125),
    ("Kathmandu", 27.7172, 85.3240),
    ("Thimphu", 27.4728, 89.6390),
    ("Colombo", 6.9271, 79.8612),
    ("Malé", 4.1755, 73.5093),
    ("Lhasa", 29.6520, 91.1721),
    ("Beijing", 39.9042, 116.4074),
    ("London", 51.5074, -0.1278),
    ("sea off Mumbai", 18.9, 71.5),
    ("null island", 0.0, 0.0),
];

#[test]
fn places_inside_india() {
    for &(name, lat, lon) in INSIDE {
        assert!(
            inside_india(lat, lon),
            "{name} ({lat}, {lon}) should be inside India"
        );
    }
}

#[test]
fn places_outside_india() {
    for &(name, lat, lon) in OUTSIDE {
        assert!(
            !inside_india(lat, lon),
            "{name} ({lat}, {lon}) should be outside India"
        );
    }
}

#[test]
fn valid_positions() {
    assert!(valid_position(0.0, 0.0));
    assert!(valid_position(90.0, 180.0));
    assert!(valid_position(-90.0, -180.0));
    assert!(valid_position(28.6139, 77.2090));
}

#[test]
fn invalid_positions_rejected() {
    for (lat, lon) in [
        (f64::NAN, 77.0),
        (28.0, f64::NAN),
        (91.0, 77.0),
        (-91.0, 77.0),
        (28.0, 181.0),
        (28.0, -180.5),
        (f64::INFINITY, 77.0),
        (28.0, f64::NEG_INFINITY),
    ] {
        assert!(
            !valid_position(lat, lon),
            "({lat}, {lon}) should be invalid"
        );
        assert!(
            !inside_india(lat, lon),
            "({lat}, {lon}) should not be inside India"
        );
    }
}
