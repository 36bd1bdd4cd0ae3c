#!/usr/bin/env python3
"""Build data/merchants.csv from the name-suggestion-index (NSI) npm package.

Usage:
    python3 scripts/import_merchants.py [PATH_TO_PACKAGE] [--out data/merchants.csv]

PATH_TO_PACKAGE is the unpacked npm package directory (the one holding
package.json and dist/json/nsi.json). Default: ./node_modules/name-suggestion-index.
Get it with `npm install name-suggestion-index` or
`npm pack name-suggestion-index && tar xzf name-suggestion-index-*.tgz` (-> ./package).

What it does:
  * reads dist/json/nsi.json, keeps the `brands/*` trees only,
  * keeps items whose locationSet includes the US ("us", "us-xx", "us-xx.geojson")
    or the whole world ("001") and does not exclude "us",
  * maps the OSM tag (amenity=cafe, shop=supermarket, ...) to the Altdata category
    taxonomy; OSM keys with no consumer-spend meaning (banks, ATMs, schools, offices,
    advertising, car dealers, ...) are dropped, and items that would land in "other"
    are kept only when their locationSet names the US itself (not just "001"),
  * groups items of one brand (same brand:wikidata) into one merchant, picking the
    flagship item for name/category and folding the others into match_names,
  * de-duplicates by name (case-insensitive) and by brand_id slug,
  * adds a hard-coded list of online / subscription / travel / telecom / utility /
    software / rideshare / transit brands a physical-places index lacks,
  * writes the CSV sorted by brand_id; a brand keeps the id the existing CSV gave it (ids
    are durable: aggregates are keyed by them) and a new brand takes the next free id;
    prints a per-category summary.

Only the Python 3.11 standard library is used. Output is deterministic for a given input.

The NSI data is (c) the name-suggestion-index contributors, BSD-3-Clause.
"""

from __future__ import annotations

import argparse
import collections
import csv
import json
import os
import re
import sys
import unicodedata

CATEGORIES = [
    "coffee_shop", "fast_food", "restaurant", "grocery", "gas_station", "rideshare",
    "streaming", "ecommerce", "pharmacy", "general_merchandise", "airline", "hotel",
    "utility", "telecom", "software", "apparel", "home_improvement", "entertainment",
    "transit", "other",
]

# Typical MCC per category (used when no more specific code is known).
CATEGORY_MCC = {
    "coffee_shop": "5814", "fast_food": "5814", "restaurant": "5812", "grocery": "5411",
    "gas_station": "5541", "rideshare": "4121", "streaming": "4899", "ecommerce": "5999",
    "pharmacy": "5912", "general_merchandise": "5311", "airline": "4511", "hotel": "7011",
    "utility": "4900", "telecom": "4814", "software": "5734", "apparel": "5651",
    "home_improvement": "5200", "entertainment": "7832", "transit": "4111", "other": "5999",
}

# OSM "key/value" -> (category, mcc or None for the category default).
# Order matters: when one brand appears under several tags, the earliest tag wins.
TAG_MAP: list[tuple[str, str, str | None]] = [
    ("amenity/cafe", "coffee_shop", None),
    ("shop/coffee", "coffee_shop", None),
    ("shop/tea", "coffee_shop", None),
    ("amenity/fast_food", "fast_food", None),
    ("amenity/ice_cream", "fast_food", None),
    ("amenity/food_court", "fast_food", None),
    ("amenity/restaurant", "restaurant", None),
    ("amenity/bar", "restaurant", "5813"),
    ("amenity/pub", "restaurant", "5813"),
    ("amenity/biergarten", "restaurant", "5813"),
    ("amenity/nightclub", "entertainment", "5813"),
    ("shop/department_store", "general_merchandise", None),
    ("shop/wholesale", "general_merchandise", "5300"),
    ("shop/variety_store", "general_merchandise", "5331"),
    ("shop/general", "general_merchandise", "5399"),
    ("shop/discount", "general_merchandise", "5310"),
    ("shop/supermarket", "grocery", None),
    ("amenity/pharmacy", "pharmacy", None),
    ("shop/chemist", "pharmacy", None),
    ("healthcare/pharmacy", "pharmacy", None),
    ("shop/doityourself", "home_improvement", None),
    ("shop/hardware", "home_improvement", "5251"),
    ("shop/country_store", "home_improvement", "5261"),
    ("shop/clothes", "apparel", None),
    ("shop/shoes", "apparel", "5661"),
    ("shop/electronics", "general_merchandise", "5732"),
    ("tourism/hotel", "hotel", None),
    ("tourism/motel", "hotel", None),
    ("tourism/hostel", "hotel", None),
    ("tourism/guest_house", "hotel", None),
    ("tourism/apartment", "hotel", None),
    ("tourism/caravan_site", "hotel", "7033"),
    ("tourism/camp_site", "hotel", "7033"),
    ("amenity/cinema", "entertainment", None),
    ("amenity/fuel", "gas_station", None),
    ("waterway/fuel", "gas_station", None),
    ("highway/services", "gas_station", None),
    ("shop/gas", "gas_station", "5983"),
    ("amenity/charging_station", "gas_station", "5552"),
    ("man_made/charge_point", "gas_station", "5552"),
    ("shop/convenience", "grocery", "5499"),
    ("shop/greengrocer", "grocery", None),
    ("shop/butcher", "grocery", "5422"),
    ("shop/seafood", "grocery", "5422"),
    ("shop/deli", "grocery", "5499"),
    ("shop/cheese", "grocery", "5499"),
    ("shop/dairy", "grocery", "5451"),
    ("shop/frozen_food", "grocery", None),
    ("shop/health_food", "grocery", "5499"),
    ("shop/farm", "grocery", None),
    ("shop/spices", "grocery", "5499"),
    ("shop/beverages", "grocery", "5499"),
    ("shop/alcohol", "grocery", "5921"),
    ("shop/wine", "grocery", "5921"),
    ("shop/bakery", "fast_food", "5462"),
    ("shop/pastry", "fast_food", "5462"),
    ("shop/confectionery", "grocery", "5441"),
    ("shop/chocolate", "grocery", "5441"),
    ("shop/mobile_phone", "telecom", None),
    ("shop/telecommunication", "telecom", None),
    ("office/telecommunication", "telecom", None),
    ("shop/bag", "apparel", "5948"),
    ("shop/fashion_accessories", "apparel", "5631"),
    ("shop/jewelry", "apparel", "5944"),
    ("shop/watches", "apparel", "5944"),
    ("shop/boutique", "apparel", None),
    ("shop/leather", "apparel", "5948"),
    ("shop/sports", "apparel", "5941"),
    ("shop/outdoor", "apparel", "5941"),
    ("shop/second_hand", "general_merchandise", "5931"),
    ("shop/charity", "general_merchandise", "5931"),
    ("shop/cosmetics", "general_merchandise", "5977"),
    ("shop/perfumery", "general_merchandise", "5977"),
    ("shop/computer", "general_merchandise", "5732"),
    ("shop/hifi", "general_merchandise", "5732"),
    ("shop/camera", "general_merchandise", "5946"),
    ("shop/printer_ink", "general_merchandise", "5943"),
    ("shop/stationery", "general_merchandise", "5943"),
    ("shop/books", "general_merchandise", "5942"),
    ("shop/toys", "general_merchandise", "5945"),
    ("shop/baby_goods", "general_merchandise", "5641"),
    ("shop/craft", "general_merchandise", "5970"),
    ("shop/art", "general_merchandise", "5970"),
    ("shop/hobby", "general_merchandise", "5945"),
    ("shop/party", "general_merchandise", "5999"),
    ("shop/gift", "general_merchandise", "5947"),
    ("shop/candles", "general_merchandise", "5947"),
    ("shop/musical_instrument", "general_merchandise", "5733"),
    ("shop/pet", "general_merchandise", "5995"),
    ("shop/mall", "general_merchandise", None),
    ("shop/furniture", "home_improvement", "5712"),
    ("shop/bed", "home_improvement", "5712"),
    ("shop/houseware", "home_improvement", "5719"),
    ("shop/kitchen", "home_improvement", "5719"),
    ("shop/interior_decoration", "home_improvement", "5719"),
    ("shop/bathroom_furnishing", "home_improvement", "5719"),
    ("shop/lighting", "home_improvement", "5719"),
    ("shop/window_blind", "home_improvement", "5719"),
    ("shop/curtain", "home_improvement", "5719"),
    ("shop/carpet", "home_improvement", "5713"),
    ("shop/flooring", "home_improvement", "5713"),
    ("shop/tiles", "home_improvement", "5211"),
    ("shop/appliance", "home_improvement", "5722"),
    ("shop/vacuum_cleaner", "home_improvement", "5722"),
    ("shop/paint", "home_improvement", "5231"),
    ("shop/trade", "home_improvement", "5211"),
    ("shop/building_materials", "home_improvement", "5211"),
    ("shop/electrical", "home_improvement", "5065"),
    ("shop/power_tools", "home_improvement", "5251"),
    ("shop/garden_centre", "home_improvement", "5261"),
    ("shop/agrarian", "home_improvement", "5261"),
    ("shop/swimming_pool", "home_improvement", "5996"),
    ("shop/plant_hire", "home_improvement", "7394"),
    ("shop/video_games", "entertainment", "5734"),
    ("shop/games", "entertainment", "5945"),
    ("shop/video", "entertainment", "7841"),
    ("shop/music", "entertainment", "5735"),
    ("shop/ticket", "entertainment", "7922"),
    ("amenity/theatre", "entertainment", "7922"),
    ("amenity/arts_centre", "entertainment", "7999"),
    ("amenity/casino", "entertainment", "7995"),
    ("amenity/events_venue", "entertainment", "7999"),
    ("amenity/music_venue", "entertainment", "7922"),
    ("tourism/theme_park", "entertainment", "7996"),
    ("tourism/zoo", "entertainment", "7998"),
    ("tourism/aquarium", "entertainment", "7998"),
    ("tourism/attraction", "entertainment", "7999"),
    ("tourism/museum", "entertainment", "7991"),
    ("leisure/fitness_centre", "entertainment", "7997"),
    ("leisure/sports_centre", "entertainment", "7997"),
    ("leisure/bowling_alley", "entertainment", "7933"),
    ("leisure/amusement_arcade", "entertainment", "7994"),
    ("leisure/adult_gaming_centre", "entertainment", "7994"),
    ("leisure/water_park", "entertainment", "7996"),
    ("leisure/escape_game", "entertainment", "7999"),
    ("leisure/trampoline_park", "entertainment", "7999"),
    ("leisure/miniature_golf", "entertainment", "7999"),
    ("leisure/golf_course", "entertainment", "7992"),
    ("leisure/dance", "entertainment", "7911"),
    ("leisure/high_ropes_course", "entertainment", "7999"),
    ("amenity/car_rental", "transit", "7512"),
    ("amenity/car_sharing", "transit", "7512"),
    ("amenity/bicycle_rental", "transit", "4121"),
    ("amenity/parking", "transit", "7523"),
    ("amenity/taxi", "rideshare", None),
    ("amenity/ferry_terminal", "transit", "4111"),
    # 'other' - kept because they are common consumer card spend
    ("shop/car_parts", "other", "5533"),
    ("shop/car_repair", "other", "7538"),
    ("shop/tyres", "other", "5532"),
    ("amenity/car_wash", "other", "7542"),
    ("shop/vehicle_inspection", "other", "7549"),
    ("shop/optician", "other", "8043"),
    ("shop/hearing_aids", "other", "8099"),
    ("shop/medical_supply", "pharmacy", "5047"),
    ("shop/nutrition_supplements", "pharmacy", "5499"),
    ("shop/herbalist", "pharmacy", "5499"),
    ("shop/beauty", "other", "7298"),
    ("shop/hairdresser", "other", "7230"),
    ("shop/hairdresser_supply", "other", "5977"),
    ("shop/massage", "other", "7298"),
    ("shop/tattoo", "other", "7299"),
    ("shop/laundry", "other", "7211"),
    ("shop/dry_cleaning", "other", "7216"),
    ("shop/tailor", "other", "5697"),
    ("shop/shoe_repair", "other", "7251"),
    ("shop/storage_rental", "other", "4225"),
    ("shop/copyshop", "other", "7338"),
    ("amenity/post_office", "other", "9402"),
    ("shop/florist", "other", "5992"),
    ("shop/photo", "other", "7395"),
    ("shop/frame", "other", "5970"),
    ("shop/pawnbroker", "other", "5933"),
    ("shop/tobacco", "other", "5993"),
    ("shop/e-cigarette", "other", "5993"),
    ("shop/cannabis", "other", "5999"),
    ("shop/travel_agency", "other", "4722"),
    ("shop/rental", "other", "7394"),
    ("shop/repair", "other", "7699"),
    ("shop/locksmith", "other", "7699"),
    ("shop/pest_control", "other", "7342"),
    ("craft/electronics_repair", "other", "7622"),
    ("shop/pet_grooming", "other", "0742"),
    ("amenity/veterinary", "other", "0742"),
    ("amenity/dentist", "other", "8021"),
    ("amenity/doctors", "other", "8011"),
    ("amenity/clinic", "other", "8011"),
    ("healthcare/laboratory", "other", "8071"),
    ("healthcare/blood_donation", "other", "8099"),
    ("amenity/animal_boarding", "other", "0742"),
    # added in the resolver-quality round: consumer spend that card descriptors show
    ("office/insurance", "other", "6300"),
    ("office/tax_advisor", "other", "7276"),
    ("office/moving_company", "other", "4214"),
    ("shop/newsagent", "general_merchandise", "5994"),
    ("shop/bicycle", "other", "5940"),
    ("shop/truck_repair", "other", "7538"),
    ("healthcare/physiotherapist", "other", "8049"),
    ("amenity/childcare", "other", "8351"),
    ("amenity/kindergarten", "other", "8351"),
    ("leisure/indoor_play", "entertainment", "7999"),
]
TAG_INDEX = {k: (i, cat, mcc) for i, (k, cat, mcc) in enumerate(TAG_MAP)}

# --- Hand-curated additions: brands a physical-places index lacks. ---------------------
# (name, category, match_names, mcc or None, ticker)
EXTRA_BRANDS: list[tuple[str, str, str, str | None, str]] = [
    # streaming / media subscriptions
    ("Netflix", "streaming", "netflix.com|netflix inc", None, "NFLX"),
    ("Spotify", "streaming", "spotify usa|spotify.com|spotify ab", "5815", "SPOT"),
    ("Hulu", "streaming", "hlu*hulu|hulu.com|hulu llc", None, "DIS"),
    ("Disney+", "streaming", "disney plus|disneyplus|disney+ subscription", None, "DIS"),
    ("HBO Max", "streaming", "max.com|hbomax|hbo max.com|hbo", None, "WBD"),
    ("YouTube Premium", "streaming", "youtube|google *youtube|youtube music|youtubepremium", None, "GOOGL"),
    ("YouTube TV", "streaming", "google *youtube tv|youtubetv", None, "GOOGL"),
    ("Paramount+", "streaming", "paramount plus|cbs all access|paramountplus", None, ""),
    ("Peacock", "streaming", "peacock tv|peacocktv", None, "CMCSA"),
    ("Sling TV", "streaming", "sling.com|sling", None, "SATS"),
    ("Fubo", "streaming", "fubotv|fubo tv", None, "FUBO"),
    ("Philo", "streaming", "philo tv", None, ""),
    ("Crunchyroll", "streaming", "crunchyroll.com", None, "SONY"),
    ("ESPN+", "streaming", "espn plus|espnplus", None, "DIS"),
    ("Starz", "streaming", "starz entertainment", None, "STRZ"),
    ("Apple TV+", "streaming", "apple tv plus", None, "AAPL"),
    ("Pandora Music", "streaming", "pandora media|pandora.com|pandora premium|pandora plus", "5815", "SIRI"),
    ("SiriusXM", "streaming", "sxm*siriusxm|sirius xm|siriusxm.com|sirius radio", None, "SIRI"),
    ("Audible", "streaming", "audible*|audible inc|audible.com", "5815", "AMZN"),
    ("Tidal", "streaming", "tidal.com", "5815", ""),
    ("Twitch", "streaming", "twitch.tv|twitch interactive", "5815", "AMZN"),
    ("DirecTV", "streaming", "directv|direct tv|directv stream", None, ""),
    ("Dish Network", "streaming", "dish|dish tv|dishnetwork", None, "SATS"),
    ("Discovery+", "streaming", "discovery plus", None, "WBD"),
    ("SoundCloud", "streaming", "soundcloud.com", "5815", ""),
    ("Kindle Unlimited", "streaming", "amazon kindle|kindle svcs|kindle", "5815", "AMZN"),
    ("Patreon", "streaming", "patreon* membership|patreon.com", "5815", ""),
    ("Substack", "streaming", "substack.com", "5815", ""),
    ("The New York Times", "streaming", "nytimes|ny times|nyt digital|nytimes.com", "5994", "NYT"),
    ("The Wall Street Journal", "streaming", "wsj|dow jones|wsj.com", "5994", "NWSA"),
    # e-commerce
    ("Amazon", "ecommerce", "amazon.com|amzn mktp us|amzn mktp|amazon mktplace|amazon marketplace|amzn.com/bill|amazon retail|amazon.com*", "5942", "AMZN"),
    ("Amazon Prime", "ecommerce", "amazon prime*|prime video|primevideo|amzn prime", "5968", "AMZN"),
    ("eBay", "ecommerce", "ebay inc|ebay.com|ebay o*", None, "EBAY"),
    ("Etsy", "ecommerce", "etsy.com|etsy inc", None, "ETSY"),
    ("Chewy", "ecommerce", "chewy.com|chewy inc", "5995", "CHWY"),
    ("Wayfair", "ecommerce", "wayfair.com|wayfair*", "5712", "W"),
    ("Shein", "ecommerce", "shein.com|shein us", "5651", ""),
    ("Temu", "ecommerce", "temu.com", None, "PDD"),
    ("AliExpress", "ecommerce", "aliexpress.com|alibaba", None, "BABA"),
    ("Wish", "ecommerce", "wish.com|contextlogic", None, ""),
    ("Zappos", "ecommerce", "zappos.com", "5661", "AMZN"),
    ("QVC", "ecommerce", "qvc inc|qvc.com", "5964", "QVCGA"),
    ("Newegg", "ecommerce", "newegg.com|newegg inc", "5732", "NEGG"),
    ("B&H Photo", "ecommerce", "b&h photo video|bhphotovideo|b & h photo", "5732", ""),
    ("Poshmark", "ecommerce", "poshmark.com", None, ""),
    ("Mercari", "ecommerce", "mercari.com", None, ""),
    ("StockX", "ecommerce", "stockx.com", None, ""),
    ("Overstock", "ecommerce", "overstock.com|beyond inc", None, "BYON"),
    ("Shutterfly", "ecommerce", "shutterfly.com", None, ""),
    ("Vistaprint", "ecommerce", "vistaprint.com", None, "CMPR"),
    ("1-800-Flowers", "ecommerce", "1800flowers|1-800-flowers.com", "5992", "FLWS"),
    ("Fanatics", "ecommerce", "fanatics.com|fanatics inc", None, ""),
    ("Zulily", "ecommerce", "zulily.com", None, ""),
    # food & grocery delivery
    ("DoorDash", "restaurant", "dd *doordash|doordash*|dd doordash|doordash dashpass|dashpass", None, "DASH"),
    ("Uber Eats", "restaurant", "uber *eats|ubereats|uber eats pending", None, "UBER"),
    ("Grubhub", "restaurant", "grubhub*|grubhub.com|grubhubfood", None, "GRUB"),
    ("Postmates", "restaurant", "postmates*", None, "UBER"),
    ("Seamless", "restaurant", "seamless.com|seamlessweb", None, ""),
    ("Caviar", "restaurant", "trycaviar", None, "DASH"),
    ("ezCater", "restaurant", "ezcater.com", None, ""),
    ("Instacart", "grocery", "instacart*|maplebear|instacart.com|instacart+", None, "CART"),
    ("Shipt", "grocery", "shipt.com|shipt*", None, "TGT"),
    ("Gopuff", "grocery", "gopuff.com|go puff", "5499", ""),
    ("HelloFresh", "grocery", "hellofresh.com|hello fresh", "5499", ""),
    ("Blue Apron", "grocery", "blueapron", "5499", ""),
    ("Factor", "grocery", "factor_ meals|factor75|factor meals", "5499", ""),
    ("Thrive Market", "grocery", "thrivemarket", "5499", ""),
    ("Misfits Market", "grocery", "misfitsmarket", None, ""),
    ("FreshDirect", "grocery", "fresh direct", None, ""),
    ("Weee!", "grocery", "weee|sayweee", None, ""),
    # rideshare & micromobility
    ("Uber", "rideshare", "uber *trip|uber trip|uber.com|uber *pending|uber bv|uber one", None, "UBER"),
    ("Lyft", "rideshare", "lyft *ride|lyft ride|lyft.com|lyft inc", None, "LYFT"),
    ("Via", "rideshare", "ridewithvia|via transportation", None, ""),
    ("Curb", "rideshare", "curb mobility|curb taxi", None, ""),
    ("Waymo", "rideshare", "waymo one|waymo llc", None, "GOOGL"),
    ("Bird", "transit", "bird rides|bird app", "4121", ""),
    ("Spin", "transit", "spin scooters|spin mobility", "4121", ""),
    ("Revel", "transit", "gorevel|revel transit", "4121", ""),
    # travel
    ("Airbnb", "hotel", "airbnb*|airbnb inc|airbnb.com|air bnb", None, "ABNB"),
    ("Vrbo", "hotel", "vrbo.com|homeaway", None, "EXPE"),
    ("Expedia", "hotel", "expedia*|expedia.com|expedia inc", "4722", "EXPE"),
    ("Booking.com", "hotel", "booking.com|booking com|bkg*hotel", "4722", "BKNG"),
    ("Hotels.com", "hotel", "hotels com|hotelscom", "4722", "EXPE"),
    ("Priceline", "hotel", "priceline.com|priceline*", "4722", "BKNG"),
    ("Orbitz", "hotel", "orbitz.com", "4722", "EXPE"),
    ("Travelocity", "hotel", "travelocity.com", "4722", "EXPE"),
    ("Hopper", "hotel", "hopper.com|hopper inc", "4722", ""),
    ("Agoda", "hotel", "agoda.com", "4722", "BKNG"),
    ("Trip.com", "hotel", "ctrip|trip com", "4722", "TCOM"),
    ("Delta Air Lines", "airline", "delta air|delta airlines|delta.com|delta air lines", None, "DAL"),
    ("United Airlines", "airline", "united air|united.com|united 016|ual", None, "UAL"),
    ("American Airlines", "airline", "american air|aa.com|american airlines inc|amer air", None, "AAL"),
    ("Southwest Airlines", "airline", "southwest air|southwes|swa|southwest.com", None, "LUV"),
    ("JetBlue", "airline", "jetblue airways|jetblue.com|jet blue", None, "JBLU"),
    ("Alaska Airlines", "airline", "alaska air|alaskaair.com|alaska airlines inc", None, "ALK"),
    ("Spirit Airlines", "airline", "spirit air|spirit airl|spirit.com|nks", None, ""),
    ("Frontier Airlines", "airline", "frontier air|flyfrontier|frontier airlines inc", None, "ULCC"),
    ("Hawaiian Airlines", "airline", "hawaiian air|hawaiianairlines", None, "ALK"),
    ("Allegiant Air", "airline", "allegiant|allegiantair", None, "ALGT"),
    ("Sun Country Airlines", "airline", "sun country|suncountry", None, "SNCY"),
    ("Breeze Airways", "airline", "breeze air|flybreeze", None, ""),
    ("Avelo Airlines", "airline", "avelo air|aveloair", None, ""),
    ("Air Canada", "airline", "aircanada", None, "AC.TO"),
    ("British Airways", "airline", "british a|britishairways|ba.com", None, "IAG.L"),
    ("Lufthansa", "airline", "deutsche lufthansa|lufthansa.com", None, ""),
    ("Air France", "airline", "airfrance", None, ""),
    ("KLM", "airline", "klm royal dutch|klm.com", None, ""),
    ("Emirates", "airline", "emirates airline|emirates.com", None, ""),
    ("Qatar Airways", "airline", "qatar air", None, ""),
    ("Virgin Atlantic", "airline", "virgin atl", None, ""),
    ("Aer Lingus", "airline", "aerlingus", None, ""),
    ("Turkish Airlines", "airline", "thy|turk hava yollari", None, ""),
    ("Icelandair", "airline", "icelandair.com", None, ""),
    ("Japan Airlines", "airline", "jal|japan air", None, ""),
    ("Singapore Airlines", "airline", "singapore air", None, ""),
    # telecom / internet
    ("Spectrum", "telecom", "charter communications|spectrum.com|charter spectrum|twc|time warner cable|time warner nyc|twc*time warner", "4899", "CHTR"),
    ("Cox Communications", "telecom", "cox comm|cox.com|cox cable", "4899", ""),
    ("Optimum", "telecom", "altice usa|optimum online|cablevision", "4899", "ATUS"),
    ("Frontier Communications", "telecom", "frontier comm|frontier.com|frontier internet", None, "FYBR"),
    ("CenturyLink", "telecom", "centurylink|lumen|quantum fiber", None, "LUMN"),
    ("Google Fi", "telecom", "google *fi|google fi wireless|project fi", None, "GOOGL"),
    ("Mint Mobile", "telecom", "mintmobile|mint mobile.com", None, "TMUS"),
    ("Visible", "telecom", "visible wireless|visible.com", None, "VZ"),
    ("Boost Mobile", "telecom", "boostmobile", None, "SATS"),
    ("Consumer Cellular", "telecom", "consumercellular", None, ""),
    ("Starlink", "telecom", "spacex|starlink internet|starlink.com", None, ""),
    ("Ting", "telecom", "ting internet|ting mobile", None, ""),
    ("Vonage", "telecom", "vonage holdings", None, ""),
    ("Ooma", "telecom", "ooma inc", None, "OOMA"),
    ("US Mobile", "telecom", "usmobile", None, ""),
    # utilities
    ("PG&E", "utility", "pacific gas & electric|pacific gas and electric|pgande|pg&e webrecurring|pge", None, "PCG"),
    ("Con Edison", "utility", "coned|con ed|consolidated edison|conedison", None, "ED"),
    ("Duke Energy", "utility", "duke energy progress|duke-energy|duke energy carolinas", None, "DUK"),
    ("Southern California Edison", "utility", "sce|so cal edison|socal edison|edison", None, "EIX"),
    ("SoCalGas", "utility", "southern california gas|so cal gas|socal gas", None, "SRE"),
    ("SDG&E", "utility", "san diego gas & electric|sdge", None, "SRE"),
    ("Dominion Energy", "utility", "dominion va power|dominion energy virginia", None, "D"),
    ("Georgia Power", "utility", "georgia power co", None, "SO"),
    ("Florida Power & Light", "utility", "fpl|florida power and light", None, "NEE"),
    ("Xcel Energy", "utility", "xcel|northern states power", None, "XEL"),
    ("ComEd", "utility", "commonwealth edison", None, "EXC"),
    ("PSE&G", "utility", "public service electric and gas|pseg", None, "PEG"),
    ("National Grid", "utility", "nationalgrid|national grid us", None, "NGG"),
    ("Eversource", "utility", "eversource energy", None, "ES"),
    ("DTE Energy", "utility", "dte", None, "DTE"),
    ("Consumers Energy", "utility", "consumers energy co", None, "CMS"),
    ("Entergy", "utility", "entergy louisiana|entergy texas", None, "ETR"),
    ("AEP", "utility", "american electric power|aep ohio", None, "AEP"),
    ("Ameren", "utility", "ameren missouri|ameren illinois", None, "AEE"),
    ("CenterPoint Energy", "utility", "centerpoint", None, "CNP"),
    ("Puget Sound Energy", "utility", "pse", None, ""),
    ("LADWP", "utility", "los angeles dept of water and power|la dwp", None, ""),
    ("TXU Energy", "utility", "txu", None, "VST"),
    ("Reliant Energy", "utility", "reliant", None, "NRG"),
    ("Pepco", "utility", "potomac electric power", None, "EXC"),
    ("BGE", "utility", "baltimore gas and electric", None, "EXC"),
    ("PECO", "utility", "peco energy", None, "EXC"),
    ("Waste Management", "utility", "waste mgmt|wm.com|wm ezpay", "4900", "WM"),
    ("Republic Services", "utility", "republic svcs|republicservices", "4900", "RSG"),
    ("American Water", "utility", "american water works|amwater", None, "AWK"),
    # software & online services
    ("Apple", "software", "apple.com|apple.com/bill|apple.com bill|apl*itunes|apl* itunes.com|itunes.com|apple com bill|icloud|apple services", "5818", "AAPL"),
    ("Google", "software", "google *|google*|google play|google storage|google one|google cloud|google ads", "5818", "GOOGL"),
    ("Google Workspace", "software", "google *gsuite|g suite|google workspace_|google*workspace", "5817", "GOOGL"),
    ("Microsoft", "software", "microsoft*|msft*|microsoft 365|office 365|microsoft store|msbill.info|azure", "5817", "MSFT"),
    ("Adobe", "software", "adobe inc|adobe *creative cloud|adobe systems|adobe *acropro", "5817", "ADBE"),
    ("Dropbox", "software", "dropbox*|dropbox.com", "5817", "DBX"),
    ("Zoom", "software", "zoom.us|zoom video|zoom.com", "5817", "ZM"),
    ("OpenAI", "software", "openai *chatgpt|chatgpt|openai.com|chatgpt subscription", "5817", ""),
    ("Anthropic", "software", "claude.ai|anthropic.com|claude subscription", "5817", ""),
    ("GitHub", "software", "github.com|github inc", "5817", "MSFT"),
    ("Slack", "software", "slack technologies|slack.com", "5817", "CRM"),
    ("Notion", "software", "notion labs|notion.so", "5817", ""),
    ("Canva", "software", "canva.com|canva pty", "5817", ""),
    ("Intuit", "software", "intuit *turbotax|turbotax|quickbooks|intuit *qbooks|mint.com", "5817", "INTU"),
    ("Norton", "software", "norton antivirus|nortonlifelock|gen digital", "5817", "GEN"),
    ("McAfee", "software", "mcafee.com", "5817", ""),
    ("NordVPN", "software", "nord vpn|nordsec|nordvpn.com", "5817", ""),
    ("ExpressVPN", "software", "express vpn", "5817", ""),
    ("1Password", "software", "agilebits|1password.com", "5817", ""),
    ("LastPass", "software", "lastpass.com", "5817", ""),
    ("Grammarly", "software", "grammarly.com|grammarly inc", "5817", ""),
    ("Duolingo", "software", "duolingo inc|duolingo plus", "5817", "DUOL"),
    ("Squarespace", "software", "sqsp*|squarespace inc", "5817", ""),
    ("Wix", "software", "wix.com", "5817", "WIX"),
    ("GoDaddy", "software", "dnh*godaddy|godaddy.com", "5817", "GDDY"),
    ("Salesforce", "software", "salesforce.com", "5817", "CRM"),
    ("Atlassian", "software", "atlassian.com|jira|confluence", "5817", "TEAM"),
    ("DocuSign", "software", "docusign inc", "5817", "DOCU"),
    ("Mailchimp", "software", "mailchimp.com|intuit mailchimp", "5817", "INTU"),
    ("LinkedIn", "software", "linkedin premium|linkedin.com|linkedin corp", "5817", "MSFT"),
    ("Meta", "software", "facebk|facebook|facebook ads|meta platforms|instagram|meta verified|facebook technologies|oculus", "7311", "META"),
    ("Amazon Web Services", "software", "aws|amazon web services|aws.amazon.co", "5817", "AMZN"),
    ("Autodesk", "software", "autodesk inc", "5817", "ADSK"),
    ("Figma", "software", "figma.com", "5817", "FIG"),
    ("Calm", "software", "calm.com", "5817", ""),
    ("Headspace", "software", "headspace.com|headspace inc", "5817", ""),
    ("Tinder", "software", "tinder.com", "5817", "MTCH"),
    ("Bumble", "software", "bumble inc", "5817", "BMBL"),
    ("Hinge", "software", "hinge app", "5817", "MTCH"),
    ("Match.com", "software", "match com|match group", "5817", "MTCH"),
    ("Evernote", "software", "evernote corp", "5817", ""),
    ("Nintendo", "entertainment", "nintendo of america|nintendo eshop|nintendo switch online", "5816", "NTDOY"),
    # games & entertainment
    ("Steam", "entertainment", "steam games|steampowered|valve|steam purchase|wl *steam", "5816", ""),
    ("PlayStation", "entertainment", "playstation network|sony playstation|psn|sony interactive", "5816", "SONY"),
    ("Xbox", "entertainment", "microsoft*xbox|msft *xbox|xbox live|xbox game pass", "5816", "MSFT"),
    ("Epic Games", "entertainment", "epic games store|epicgames", "5816", ""),
    ("Roblox", "entertainment", "roblox corp|roblox.com", "5816", "RBLX"),
    ("Electronic Arts", "entertainment", "ea *origin|ea.com|electronic arts inc", "5816", "EA"),
    ("Blizzard", "entertainment", "blizzard entertainment|battle.net|blizzard ent", "5816", "MSFT"),
    ("Ticketmaster", "entertainment", "ticketmaster.com|tm *ticketmaster|ticketmaster*", "7922", "LYV"),
    ("Live Nation", "entertainment", "livenation|live nation ent", "7922", "LYV"),
    ("StubHub", "entertainment", "stubhub.com|stubhub inc", "7922", "STUB"),
    ("SeatGeek", "entertainment", "seatgeek.com", "7922", ""),
    ("Eventbrite", "entertainment", "eventbrite.com", "7922", "EB"),
    ("Fandango", "entertainment", "fandango.com|fandango*", "7832", ""),
    ("Peloton", "entertainment", "peloton interactive|onepeloton|peloton membership", "7997", "PTON"),
    ("ClassPass", "entertainment", "classpass.com", "7997", ""),
    ("Walt Disney World", "entertainment", "wdw|disney world|wdw tickets|disney parks", "7996", "DIS"),
    ("Disneyland", "entertainment", "disneyland resort|dlr tickets", "7996", "DIS"),
    ("Universal Studios", "entertainment", "universal orlando|universal studios hollywood", "7996", "CMCSA"),
    # transit, tolls, parking
    ("Amtrak", "transit", "amtrak.com|amtrak tickets|nrpc|national railroad passenger", "4112", ""),
    ("MTA", "transit", "mta*nyct|nyct paygo|omny|metrocard|mta nyc transit|mta*lirr|mta*mnr|mta*metrocard|mta*mnr stations", None, ""),
    ("BART", "transit", "bay area rapid transit|bart-", None, ""),
    ("Clipper", "transit", "clipper card|clippercard|clipper service", None, ""),
    ("Caltrain", "transit", "peninsula corridor", None, ""),
    ("LA Metro", "transit", "lacmta|metro la|tap card", None, ""),
    ("WMATA", "transit", "wmata|smartrip|dc metro", None, ""),
    ("MBTA", "transit", "charliecard|mbta", None, ""),
    ("SEPTA", "transit", "septa key", None, ""),
    ("CTA", "transit", "ventra|chicago transit", None, ""),
    ("NJ Transit", "transit", "njt|nj transit rail", None, ""),
    ("PATH", "transit", "panynj path", None, ""),
    ("MARTA", "transit", "breeze card", None, ""),
    ("ORCA", "transit", "sound transit|orca card|king county metro", None, ""),
    ("TriMet", "transit", "trimet hop", None, ""),
    ("Greyhound", "transit", "greyhound lines|greyhound.com", "4131", "FLXB"),
    ("Megabus", "transit", "megabus.com", "4131", ""),
    ("FlixBus", "transit", "flixbus.com|flix", "4131", ""),
    ("E-ZPass", "transit", "ezpass|e-zpass|ez pass", "4784", ""),
    ("FasTrak", "transit", "fastrak|bay area fastrak|the toll roads", "4784", ""),
    ("SunPass", "transit", "sunpass", "4784", ""),
    ("ParkMobile", "transit", "parkmobile*|park mobile", "7523", ""),
    ("SpotHero", "transit", "spothero.com", "7523", ""),
    ("LAZ Parking", "transit", "laz parking", "7523", ""),
    ("SP+ Parking", "transit", "sp+|sp plus|standard parking", "7523", ""),
    ("Zipcar", "transit", "zipcar inc", "7512", "CAR"),
    ("Turo", "transit", "turo inc", "7512", ""),
    # apparel / fitness / health online
    ("Stitch Fix", "apparel", "stitchfix", None, "SFIX"),
    ("Rent the Runway", "apparel", "renttherunway", None, "RENT"),
    ("Fabletics", "apparel", "fabletics.com", None, ""),
    ("ThredUp", "apparel", "thredup.com", None, "TDUP"),
    ("Hims & Hers", "pharmacy", "hims|hers|forhims", None, "HIMS"),
    ("GoodRx", "pharmacy", "goodrx.com", None, "GDRX"),
    ("Amazon Pharmacy", "pharmacy", "pillpack", None, "AMZN"),
    ("Express Scripts", "pharmacy", "express scripts home delivery|esrx", None, "CI"),
    ("Optum Rx", "pharmacy", "optumrx|optum rx", None, "UNH"),
    ("Capsule", "pharmacy", "capsule pharmacy", None, ""),
]

# Adjustments for brands that do come from NSI, keyed by brand_id slug.
# Values: dict with optional name, category, mcc, match (extra match names), ticker.
NSI_OVERRIDES: dict[str, dict[str, str]] = {
    "7_eleven": {"category": "grocery", "mcc": "5499", "match": "7-11|seven eleven|7 eleven|sei|7-eleven inc"},
    "amc": {"name": "AMC Theatres", "match": "amc|amc theaters"},
    "xfinity": {"category": "telecom", "mcc": "4899", "match": "comcast|comcast xfinity|comcast cable"},
    "walmart": {"match": "wal-mart|wm supercenter|wal mart|walmart.com|walmart supercenter|wal-mart super center|wm superc|wal-mart #"},
    "target": {"match": "target.com|target store"},
    "costco": {"match": "costco whse|costco wholesale|costco.com"},
    "the_home_depot": {"match": "home depot|homedepot.com|the home depot"},
    "verizon": {"match": "vz wireless|verizon wrls|vzwrlss|verizon wireless"},
    "at_t": {"match": "att*|at&t wireless|at&t*bill payment|att bill payment"},
    "t_mobile": {"match": "tmobile|t-mobile postpaid|t-mobile us"},
    "starbucks": {"match": "starbucks card|sbux"},
    "mcdonalds": {"match": "mcdonalds|mcd"},
    "whole_foods_market": {"match": "wholefds|whole foods|wfm|whole foods mkt"},
    "trader_joes": {"match": "trader joes|trader joe"},
    "dunkin": {"category": "coffee_shop", "match": "dunkin donuts|dd/br|dunkin #"},
    "cvs_pharmacy": {"match": "cvs/pharmacy|cvs|cvs store"},
    "chipotle": {"match": "chipotle mexican grill|chipotle online"},
    "lime": {"match": "lime*ride|lime rides|li.me"},
    "citi_bike": {"match": "citibike|lyft citi bike"},
    "exxon": {"match": "exxonmobil|exxon mobil"},
    "conoco": {"match": "conocophillips"},
    "barnes_noble": {"match": "b&n|barnes&noble|barnesnoble"},
    "walgreens": {"match": "wag/walgreens"},
    # NSI's name carries the brand's Chinese name too; card networks print only the Latin one.
    "usmile": {"name": "uSmile"},
}

# Tickers for brands from NSI (and parents where a brand is wholly owned by a listed company).
NSI_TICKERS: dict[str, str] = {
    "starbucks": "SBUX", "mcdonalds": "MCD", "chipotle": "CMG", "taco_bell": "YUM", "kfc": "YUM",
    "pizza_hut": "YUM", "habit_burger_grill": "YUM", "burger_king": "QSR", "tim_hortons": "QSR",
    "popeyes": "QSR", "firehouse_subs": "QSR", "wendys": "WEN", "dominos": "DPZ",
    "papa_johns": "PZZA", "dutch_bros_coffee": "BROS", "shake_shack": "SHAK", "wingstop": "WING",
    "sweetgreen": "SG", "cava": "CAVA", "olive_garden": "DRI", "longhorn_steakhouse": "DRI",
    "texas_roadhouse": "TXRH", "applebees": "DIN", "ihop": "DIN", "jack_in_the_box": "JACK",
    "the_cheesecake_factory": "CAKE", "cracker_barrel": "CBRL", "chilis": "EAT",
    "red_robin": "RRGB", "dennys": "DENN", "dave_busters": "PLAY", "portillos": "PTLO",
    "walmart": "WMT", "walmart_neighborhood_market": "WMT", "sams_club": "WMT", "target": "TGT",
    "costco": "COST", "kroger": "KR", "whole_foods_market": "AMZN", "amazon_fresh": "AMZN",
    "safeway": "ACI", "albertsons": "ACI", "sprouts_farmers_market": "SFM",
    "bjs_wholesale_club": "BJ", "dollar_general": "DG", "dollar_tree": "DLTR",
    "five_below": "FIVE", "ollies_bargain_outlet": "OLLI", "best_buy": "BBY", "macys": "M",
    "kohls": "KSS", "tj_maxx": "TJX", "marshalls": "TJX", "homegoods": "TJX",
    "ross": "ROST", "burlington": "BURL", "ulta_beauty": "ULTA", "nike": "NKE",
    "gap": "GAP", "old_navy": "GAP", "banana_republic": "GAP", "lululemon": "LULU",
    "victorias_secret": "VSCO", "bath_body_works": "BBWI", "american_eagle_outfitters": "AEO",
    "abercrombie_fitch": "ANF", "dicks_sporting_goods": "DKS", "foot_locker": "DKS",
    "the_home_depot": "HD", "lowes": "LOW", "tractor_supply_company": "TSCO",
    "williams_sonoma": "WSM", "pottery_barn": "WSM", "autozone": "AZO",
    "oreilly_auto_parts": "ORLY", "advance_auto_parts": "AAP", "cvs_pharmacy": "CVS",
    "shell": "SHEL", "chevron": "CVX", "exxon": "XOM", "mobil": "XOM", "bp": "BP",
    "marathon": "MPC", "caseys_general_store": "CASY", "murphy_usa": "MUSA",
    "marriott": "MAR", "courtyard": "MAR", "hilton": "HLT", "hampton_inn_suites": "HLT", "hilton_garden_inn": "HLT",
    "hyatt": "H", "wyndham": "WH", "comfort_inn": "CHH", "verizon": "VZ", "at_t": "T",
    "t_mobile": "TMUS", "xfinity": "CMCSA", "planet_fitness": "PLNT",
    "hertz": "HTZ", "avis": "CAR", "budget": "CAR", "apple_store": "AAPL", "gamestop": "GME",
    "petco": "WOOF", "chewy": "CHWY", "amc_theatres": "AMC", "the_ups_store": "UPS",
    "fedex_office": "FDX", "public_storage": "PSA", "extra_space_storage": "EXR",
}

CSV_COLUMNS = ["id", "name", "category", "brand_id", "ticker_symbol", "match_names", "mcc"]
MAX_MATCH_NAMES = 12


def slugify(name: str) -> str:
    s = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii").lower()
    s = s.replace("+", "_plus").replace("'", "").replace("\u2019", "")
    s = re.sub(r"[^a-z0-9]+", "_", s).strip("_")
    return s


def has_latin(s: str) -> bool:
    return bool(re.search(r"[A-Za-z0-9]", unicodedata.normalize("NFKD", s)))


def clean_alt(s: str) -> str:
    s = s.replace("|", " ").strip()
    return re.sub(r"\s+", " ", s)


def is_us_loc(x) -> bool:
    return isinstance(x, str) and (x.lower() in ("us", "001") or x.lower().startswith("us-"))


def us_specific(include) -> bool:
    return any(isinstance(x, str) and (x.lower() == "us" or x.lower().startswith("us-")) for x in include)


def find_package(path: str | None) -> str:
    cands = [path] if path else []
    cands += ["node_modules/name-suggestion-index", "package"]
    for c in cands:
        if c and os.path.isfile(os.path.join(c, "dist", "json", "nsi.json")):
            return c
    sys.exit(f"name-suggestion-index package not found (tried: {', '.join(c for c in cands if c)}); "
             "pass the path to the unpacked npm package")


# displayName qualifiers NSI adds to tell regional variants apart ("Target (USA)", "T-Mobile US").
QUALIFIER_RE = re.compile(r"(\s\([^)]*\)|\s(US|USA|United States|International))$")

# Words that do not make an alternative name specific to a brand.
STOP_TOKENS = {
    "the", "and", "of", "store", "stores", "shop", "shops", "market", "coffee", "co", "inc", "company",
    "restaurant", "grill", "bar", "cafe", "pharmacy", "gas", "station", "express", "center", "centre",
    "club", "fitness", "hotel", "hotels", "inn", "suites", "foods", "food", "mart", "supermarket",
    "com", "www", "us", "usa", "new", "de", "la", "le", "el", "service", "services", "clinic",
}


def tokens(s: str) -> set[str]:
    s = unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode("ascii").lower().replace("'", "")
    return {t for t in re.split(r"[^a-z0-9]+", s) if t}


def compact(s: str) -> str:
    return re.sub(r"[^a-z0-9]", "", unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode("ascii").lower())


def related(alt: str, name: str) -> bool:
    """True if an NSI alternative name plausibly names the same brand (shares a distinctive word)."""
    key_a, key_n = tokens(alt) - STOP_TOKENS, tokens(name) - STOP_TOKENS
    if key_a & key_n:
        return True
    ca, cn = compact(alt), compact(name)
    if len(cn) >= 3 and len(ca) >= 3 and (cn in ca or ca in cn):
        return True
    # prefix match of distinctive words: "krogers" ~ "kroger", "peets" ~ "peet"
    return any(a.startswith(n) or n.startswith(a) for a in key_a for n in key_n if min(len(a), len(n)) >= 4)


def display_name(item: dict) -> str:
    tags = item.get("tags", {})
    dn = item.get("displayName") or ""
    if QUALIFIER_RE.search(dn) or not dn:
        dn = tags.get("name") or tags.get("brand") or QUALIFIER_RE.sub("", dn)
    if not has_latin(dn):
        dn = tags.get("name:en") or tags.get("brand:en") or ""
    return dn.strip()


def load_wikidata(pkg: str) -> dict:
    path = os.path.join(pkg, "dist", "wikidata", "wikidata.json")
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return json.load(f).get("wikidata", {})


def website_host(entry: dict) -> str:
    site = (entry.get("identities") or {}).get("website") or ""
    m = re.match(r"^[a-z]+://(?:www\.)?([^/:?#]+)", site.strip().lower())
    if not m:
        return ""
    labels = m.group(1).split(".")
    # registrable part: "corporate.publix.com" -> "publix.com", "shop.example.co.uk" -> "example.co.uk"
    n = 3 if len(labels) >= 3 and labels[-2] in ("co", "com", "org", "net", "ac", "gov") else 2
    return ".".join(labels[-n:])


def load_nsi(pkg: str):
    wikidata = load_wikidata(pkg)
    with open(os.path.join(pkg, "dist", "json", "nsi.json"), encoding="utf-8") as f:
        data = json.load(f)
    version = data.get("_meta", {}).get("version", "?")
    records = []
    for tree_key in sorted(data["nsi"]):
        if not tree_key.startswith("brands/"):
            continue
        tag = tree_key[len("brands/"):]
        if tag not in TAG_INDEX:
            continue
        prio, cat, mcc = TAG_INDEX[tag]
        for item in data["nsi"][tree_key].get("items", []):
            ls = item.get("locationSet", {})
            inc, exc = ls.get("include", []), ls.get("exclude", [])
            if not any(is_us_loc(x) for x in inc):
                continue
            if any(isinstance(x, str) and x.lower() in ("us", "001") for x in exc):
                continue
            # worldwide-only items in 'other' are mostly car makers' workshops and foreign chains
            if cat == "other" and not us_specific(inc):
                continue
            name = display_name(item)
            if not name:
                continue
            tags = item.get("tags", {})
            wd = tags.get("brand:wikidata")
            group = ("wd", wd) if wd else ("name", name.lower())
            alts = {name, tags.get("name", ""), tags.get("brand", ""), tags.get("short_name", ""),
                    tags.get("brand:en", ""), tags.get("name:en", "")}
            alts.update(item.get("matchNames", []) or [])
            wd_entry = wikidata.get(wd, {}) if wd else {}
            label = wd_entry.get("label", "")
            alts.update({label, website_host(wd_entry)})
            records.append({
                "group": group, "name": name, "tag": tag, "prio": prio, "category": cat,
                "mcc": mcc or CATEGORY_MCC[cat], "us": us_specific(inc), "nsi_id": item.get("id", ""),
                "flagship": name.lower() == (tags.get("brand") or name).lower(),
                "label_match": bool(label) and label.lower() == name.lower(),
                "alts": {clean_alt(a) for a in alts if a and has_latin(a)},
            })
    return version, records


def build(previous_ids: dict[str, int], pkg: str):
    version, records = load_nsi(pkg)
    groups: dict = collections.defaultdict(list)
    for r in records:
        groups[r["group"]].append(r)

    merchants = []
    for recs in groups.values():
        recs.sort(key=lambda r: (not r["flagship"], r["prio"], not r["label_match"], not r["us"],
                                 len(r["name"]), r["nsi_id"]))
        p = recs[0]
        alts = set()
        for r in recs:
            alts |= {a for a in r["alts"] if related(a, p["name"])}
        merchants.append({
            "name": p["name"], "category": p["category"], "mcc": p["mcc"], "us": any(r["us"] for r in recs),
            "prio": p["prio"], "alts": alts, "ticker": "", "source": "nsi", "key": p["nsi_id"],
        })

    # Curated entries first (they win every name/slug collision), then NSI by preference.
    curated = []
    for name, cat, match, mcc, ticker in EXTRA_BRANDS:
        assert cat in CATEGORIES, (name, cat)
        curated.append({
            "name": name, "category": cat, "mcc": mcc or CATEGORY_MCC[cat], "us": True, "prio": -1,
            "alts": {clean_alt(a) for a in match.split("|") if a.strip()}, "ticker": ticker,
            "source": "curated", "key": name,
        })
    merchants.sort(key=lambda m: (not m["us"], m["prio"], m["name"].lower(), m["key"]))

    out: dict[str, dict] = {}
    by_name: dict[str, str] = {}
    dropped_dupes = 0
    for m in curated + merchants:
        slug = slugify(m["name"])
        if not slug:
            continue
        if m["source"] == "nsi" and slug in NSI_OVERRIDES:
            ov = NSI_OVERRIDES[slug]
            if "name" in ov:
                m["alts"].add(m["name"])
                m["name"] = ov["name"]
            if "category" in ov:
                m["category"] = ov["category"]
                m["mcc"] = ov.get("mcc", CATEGORY_MCC[ov["category"]])
            m["alts"] |= {clean_alt(a) for a in ov.get("match", "").split("|") if a.strip()}
            slug = slugify(m["name"])
        lname = m["name"].lower()
        hit = out.get(slug) or (out.get(by_name[lname]) if lname in by_name else None)
        if hit is not None:
            dropped_dupes += 1
            # Same brand seen in NSI and in the curated list: keep the curated row, learn NSI's names.
            if hit["source"] == "curated" and m["source"] == "nsi" and m["us"]:
                hit["alts"] |= m["alts"]
            continue
        if m["source"] == "nsi":
            m["ticker"] = NSI_TICKERS.get(slug, "")
        m["brand_id"] = slug
        out[slug] = m
        by_name[lname] = slug

    # An alternative name claimed by several merchants is ambiguous: a curated merchant keeps it,
    # else the one merchant whose whole name it contains ("walmart.com" -> Walmart, not
    # Walmart Neighborhood Market), otherwise nobody does.
    owners: dict[str, list[dict]] = collections.defaultdict(list)
    for m in out.values():
        m["alts"] = {a.lower() for a in m["alts"] if a}
        for a in m["alts"]:
            owners[a].append(m)
    for a, ms in owners.items():
        if len(ms) > 1:
            winners = [m for m in ms if m["source"] == "curated"]
            if not winners:
                winners = [m for m in ms if compact(m["name"]) in compact(a)]
            for m in ms:
                if not (len(winners) == 1 and m is winners[0]):
                    m["alts"].discard(a)

    # Ids are durable: aggregates are keyed by them. A brand keeps the id the previous catalogue
    # gave it; a new brand takes the next free id, in brand_id order.
    ids = {slug: previous_ids[slug] for slug in out if slug in previous_ids}
    next_id = max(previous_ids.values(), default=0) + 1
    for slug in sorted(out):
        if slug not in ids:
            ids[slug] = next_id
            next_id += 1
    rows = []
    for slug in sorted(out):
        i = ids[slug]
        m = out[slug]
        # lower-case, drop the merchant's own name and any other merchant's name, cap the list
        alts = sorted(m["alts"] - set(by_name))
        # keep the shortest (most general) alternatives when capping; output sorted
        keep = sorted(sorted(alts, key=lambda a: (len(a), a))[:MAX_MATCH_NAMES])
        rows.append([i, m["name"], m["category"], slug, m["ticker"], "|".join(keep), m["mcc"]])
    return version, rows, dropped_dupes


def read_previous_ids(path: str) -> dict[str, int]:
    """brand_id -> id of the catalogue being replaced, so that every brand keeps its id."""
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8", newline="") as f:
        return {row["brand_id"]: int(row["id"]) for row in csv.DictReader(f)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("package", nargs="?", help="path to the unpacked name-suggestion-index package")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "merchants.csv"))
    args = ap.parse_args()
    pkg = find_package(args.package)
    out = os.path.normpath(args.out)
    previous_ids = read_previous_ids(out)
    version, rows, dupes = build(previous_ids, pkg)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(CSV_COLUMNS)
        w.writerows(rows)
    counts = collections.Counter(r[2] for r in rows)
    print(f"name-suggestion-index {version}: wrote {len(rows)} merchants to {out} "
          f"({dupes} duplicates dropped, {sum(1 for r in rows if r[4])} with ticker)")
    for cat in CATEGORIES:
        print(f"  {cat:<20} {counts.get(cat, 0):>5}")


if __name__ == "__main__":
    main()
